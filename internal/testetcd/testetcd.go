// Package testetcd runs a real etcd child process for tests: a one-member cluster on free loopback
// ports (client and peer) with a temporary data directory, killed when the test ends. It can be
// stopped and restarted on the same ports and data for fault tests. It is imported only by tests.
package testetcd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures StartWith.
type Options struct {
	// CertFile and KeyFile, when set, make etcd serve clients over TLS (the endpoints are
	// https URLs).
	CertFile, KeyFile string
	// TrustedCAFile, when set, makes etcd require client certificates signed by it.
	TrustedCAFile string
}

// Server is an etcd child process.
type Server struct {
	// Endpoints are the client URLs ("http://127.0.0.1:PORT", or https with TLS) to give an
	// etcd client.
	Endpoints []string
	// health is the plain-HTTP URL of the health endpoint.
	health string

	t    testing.TB
	bin  string
	args []string
	out  *buffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts etcd, waits until it reports itself healthy and kills it when the test ends. The
// test fails when etcd is not installed (scripts/test-deps installs it). Heartbeat and election
// timeouts are short (50ms, 250ms), which also lowers the server's minimum lease TTL to 1s.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options (TLS for clients).
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatal("etcd is not installed: run scripts/test-deps")
	}
	var last string
	for range 3 { // another process may take a port between finding and binding it
		ports := freePorts(t, 3)
		scheme := "http"
		if opts.CertFile != "" {
			scheme = "https"
		}
		client := scheme + "://127.0.0.1:" + ports[0]
		peer := "http://127.0.0.1:" + ports[1]
		metrics := "http://127.0.0.1:" + ports[2]
		s := &Server{
			Endpoints: []string{client},
			health:    metrics + "/health",
			t:         t,
			bin:       bin,
			out:       &buffer{},
			args: []string{
				"--name", "test",
				"--data-dir", t.TempDir(),
				"--listen-client-urls", client,
				"--advertise-client-urls", client,
				"--listen-peer-urls", peer,
				"--initial-advertise-peer-urls", peer,
				"--initial-cluster", "test=" + peer,
				"--initial-cluster-state", "new",
				"--heartbeat-interval", "50",
				"--election-timeout", "250",
				"--logger", "zap",
				"--log-outputs", "stderr",
				"--log-level", "warn",
				"--listen-metrics-urls", metrics,
			},
		}
		if opts.CertFile != "" {
			s.args = append(s.args, "--cert-file", opts.CertFile, "--key-file", opts.KeyFile)
		}
		if opts.TrustedCAFile != "" {
			s.args = append(s.args, "--client-cert-auth", "--trusted-ca-file", opts.TrustedCAFile)
		}
		t.Cleanup(s.Kill)
		if err := s.start(); err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		if s.waitHealthy(15 * time.Second) {
			return s
		}
		last = s.out.String()
		s.Kill()
	}
	t.Fatalf("etcd did not become healthy:\n%s", last)
	return nil
}

// start runs the process with the server's arguments.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// Output returns what the server printed so far (warnings and errors only).
func (s *Server) Output() string { return s.out.String() }

// Healthy reports whether the server answers its /health endpoint with a healthy status.
func (s *Server) Healthy() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.health, nil)
	if err != nil {
		return false
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"health":"true"`)
}

// waitHealthy reports whether the server became healthy within d.
func (s *Server) waitHealthy(d time.Duration) bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return false
		default:
		}
		if s.Healthy() {
			return true
		}
		time.Sleep(25 * time.Millisecond)
	}
	return false
}

// Stop ends the server gracefully (SIGTERM, then SIGKILL after 10s) and waits for it; stopping
// a stopped server does nothing.
func (s *Server) Stop() { s.end(syscall.SIGTERM) }

// Kill kills the server (SIGKILL) and waits for it; killing a stopped server does nothing.
func (s *Server) Kill() { s.end(syscall.SIGKILL) }

func (s *Server) end(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process handles signals only once it runs
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("etcd on %s did not exit after SIGKILL", s.Endpoints[0])
	}
}

// Restart stops the server (if it runs) and starts it again on the same ports with the same data
// directory, then waits until it is healthy.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	for range 3 { // the old process's ports may linger for a moment
		if err := s.start(); err != nil {
			s.t.Fatalf("restart etcd: %v", err)
		}
		if s.waitHealthy(10 * time.Second) {
			return
		}
		s.Kill()
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("etcd did not become healthy after a restart:\n%s", s.Output())
}

// Pause stops the process (SIGSTOP): it keeps its connections and ports but answers nothing.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

// freePorts returns n distinct free loopback TCP ports.
func freePorts(t testing.TB, n int) []string {
	t.Helper()
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	ports := make([]string, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ports = append(ports, port)
	}
	return ports
}

// String names the server for messages.
func (s *Server) String() string { return fmt.Sprintf("etcd %s", s.Endpoints[0]) }

// buffer is a bytes.Buffer safe for concurrent writers and readers, bounded to its last 1 MiB.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.b.Len() > 1<<20 {
		b.b.Next(b.b.Len() - 1<<19)
	}
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
