package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// plane is the control plane under test: a `meshgate control` child process.
type plane struct {
	cmd       *exec.Cmd
	dataDir   string
	grpcAddr  string
	adminAddr string
	token     string
	roots     *x509.CertPool
	exited    chan struct{}
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// startPlane starts bin as `meshgate control` with its data in dataDir and its log in logPath,
// and waits until it is ready and has written its join token and trust bundle.
func startPlane(ctx context.Context, bin, dataDir, logPath string) (*plane, error) {
	grpcAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// A long workload TTL: the benchmark does not heartbeat, and registrations must outlive it.
	cmd := exec.Command(bin, "control", "--data-dir", dataDir, "--listen", grpcAddr, "--xds-listen", "off",
		"--admin", adminAddr, "--workload-ttl", "1h", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("controlscale: start %s: %w", bin, err)
	}
	p := &plane{cmd: cmd, dataDir: dataDir, grpcAddr: grpcAddr, adminAddr: adminAddr, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := p.ready(ctx); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("controlscale: the control plane did not become ready (log %s): %w", logPath, err)
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("controlscale: the control plane exited at start (log %s)", logPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return p, nil
}

// ready checks /ready and reads the join token and bundle.
func (p *plane) ready(ctx context.Context) error {
	code, body, err := p.admin(ctx, "GET", "/ready", "")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("ready: %d %s", code, body)
	}
	tok, err := os.ReadFile(filepath.Join(p.dataDir, "join-token"))
	if err != nil {
		return err
	}
	bundle, err := os.ReadFile(filepath.Join(p.dataDir, "bundle.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return errors.New("bundle.pem holds no certificate yet")
	}
	p.token, p.roots = strings.TrimSpace(string(tok)), roots
	return nil
}

// admin makes one admin API call.
func (p *plane) admin(ctx context.Context, method, path, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.adminAddr+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("X-Meshgate-Source", "controlscale.yaml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), nil
}

// apply puts the config doc.
func (p *plane) apply(ctx context.Context, doc string) error {
	code, body, err := p.admin(ctx, "PUT", "/v1/config", doc)
	if err != nil {
		return fmt.Errorf("controlscale: apply: %w", err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("controlscale: apply: %d %s", code, body)
	}
	return nil
}

// dial opens a connection to the control plane's gRPC port, presenting cert when not nil. Each
// call makes its own TCP and TLS connection.
func (p *plane) dial(cert *tls.Certificate) (*grpc.ClientConn, error) {
	tc := &tls.Config{RootCAs: p.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return grpc.NewClient(p.grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
}

// sign gets a workload certificate for service svc in namespace ns with the join token.
func (p *plane) sign(ctx context.Context, ns, svc string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse("spiffe://mesh.local/ns/" + ns + "/sa/" + svc)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		return nil, err
	}
	conn, err := p.dial(nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+p.token)
	resp, err := controlv1.NewIdentityClient(conn).Sign(ctx, &controlv1.SignRequest{Csr: csr})
	if err != nil {
		return nil, fmt.Errorf("controlscale: sign %s: %w", u, err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key, Leaf: leaf}, nil
}

// stop ends the control plane: SIGTERM to its process group, SIGKILL after 5 s.
func (p *plane) stop() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.exited
}

// rssBytes reads VmRSS of the control plane.
func (p *plane) rssBytes() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("controlscale: no VmRSS")
}

// clkTck is the kernel's clock ticks per second for /proc/PID/stat (USER_HZ, 100 on Linux).
const clkTck = 100

// cpuTime reads utime+stime of the control plane.
func (p *plane) cpuTime() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its closing parenthesis.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("controlscale: malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("controlscale: short stat")
	}
	// Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clkTck, nil
}
