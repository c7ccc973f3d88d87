package sidecar

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/control/store"
	obsmetrics "github.com/meshgate/meshgate/internal/observe/metrics"
)

// mesh is a control plane under test and the sidecars started against it.
type mesh struct {
	t     *testing.T
	plane *control.Server
	dir   string
	token string
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startMesh starts a control plane on loopback with an embedded store and applies cfg.
func startMesh(t *testing.T, cfg string) *mesh {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "control.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := control.New(control.Options{
		Store: st, DataDir: dir, GRPCAddress: "127.0.0.1:0", XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0",
		PushDebounce: 10 * time.Millisecond, WorkloadTTL: 5 * time.Second, Log: testLog(t).With("component", "control"),
	})
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		_ = s.Close()
		_ = st.Close()
	})
	tok, err := os.ReadFile(filepath.Join(dir, control.JoinTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	m := &mesh{t: t, plane: s, dir: dir, token: strings.TrimSpace(string(tok))}
	if cfg != "" {
		if _, err := s.Apply(context.Background(), "test.yaml", "test", "", []byte(cfg), nil); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// sidecar starts a sidecar for service (namespace shop) on loopback, with the workload ports
// given, and waits until it is ready.
func (m *mesh) sidecar(service string, ports []Port, mut func(*Options)) *Sidecar {
	t := m.t
	t.Helper()
	o := Options{Service: service, Namespace: "shop", Ports: ports, Addresses: []string{"127.0.0.1"},
		Inbound: "127.0.0.1:0", Outbound: "127.0.0.1:0", DrainDelay: 50 * time.Millisecond, DrainTimeout: 2 * time.Second,
		Log: testLog(t).With("sidecar", service)}
	if mut != nil {
		mut(&o)
	}
	s, err := New(o, Control{Address: m.plane.GRPCAddr().String(), CA: filepath.Join(m.dir, control.BundleFile),
		JoinToken: m.token, DataDir: t.TempDir()}, obsmetrics.New(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	select {
	case <-s.Ready():
	case <-time.After(20 * time.Second):
		t.Fatalf("sidecar %s not ready: %v", service, s.ReadyErr())
	}
	return s
}

// app starts an HTTP workload on loopback that answers with its name and the request's path.
func app(t *testing.T, name string) Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name+" "+r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return Port{Name: "http", Port: ln.Addr().(*net.TCPAddr).Port, Protocol: "http1"}
}

// echo starts a TCP workload on loopback that echoes what it reads.
func echo(t *testing.T) Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return Port{Name: "pg", Port: ln.Addr().(*net.TCPAddr).Port, Protocol: "tcp"}
}

// call sends GET path to host through the sidecar's explicit outbound port and returns the
// status, reason code and body.
func call(t *testing.T, s *Sidecar, host, path string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.OutboundAddr().String()+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s via %s: %v", host, s.OutboundAddr(), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"), string(b)
}

// eventually calls f every 50ms until it reports true or 20s pass.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
