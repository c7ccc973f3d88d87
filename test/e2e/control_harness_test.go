package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// ControlPlane is a running `meshgate control` process and the addresses it listens on.
type ControlPlane struct {
	*Meshgate
	// Dir is its data directory.
	Dir string
	// GRPC is the address proxies connect to; XDS the xDS address.
	GRPC, XDS string
	// extra are the flags it was started with beyond the addresses and data directory.
	extra []string
}

// controlAddrs are the loopback addresses of one control plane.
type controlAddrs struct{ grpc, xds, admin string }

// newControlAddrs picks free loopback ports for a control plane.
func newControlAddrs(t *testing.T) controlAddrs {
	t.Helper()
	return controlAddrs{grpc: freeAddr(t), xds: freeAddr(t), admin: freeAddr(t)}
}

// startControl starts `meshgate control` on dir with the given addresses (plus extra flags) and
// waits until its admin API answers 200 on /ready.
func startControl(t *testing.T, dir string, a controlAddrs, extra ...string) *ControlPlane {
	t.Helper()
	args := append([]string{"control", "--data-dir", dir, "--listen", a.grpc, "--xds-listen", a.xds,
		"--admin", a.admin, "--log-level", "debug"}, extra...)
	p := startProcess(t, "meshgate control", meshgateBin, args...)
	c := &ControlPlane{Meshgate: &Meshgate{Process: p, Admin: a.admin}, Dir: dir, GRPC: a.grpc, XDS: a.xds, extra: extra}
	c.waitReady()
	return c
}

// addrs returns the addresses the control plane listens on.
func (c *ControlPlane) addrs() controlAddrs {
	return controlAddrs{grpc: c.GRPC, xds: c.XDS, admin: c.Admin}
}

// cli runs a meshgate CLI command against this control plane's admin API in dir and returns its
// exit code, stdout and stderr.
func (c *ControlPlane) cli(dir string, args ...string) (int, string, string) {
	c.t.Helper()
	return runMeshgate(c.t, dir, append(args, "--server", "http://"+c.Admin)...)
}

// statusLine matches the first line `meshgate control status` prints.
var statusLine = regexp.MustCompile(`(?m)^replica (\S+) \(leader (\S*)\), trust domain (\S+)$`)

// status runs `meshgate control status` and returns its output; the test fails when it fails.
func (c *ControlPlane) status() string {
	c.t.Helper()
	code, stdout, stderr := c.cli("", "control", "status")
	if code != 0 {
		c.t.Fatalf("meshgate control status: exit %d\n%s%s", code, stdout, stderr)
	}
	return stdout
}

// joinToken reads the join token the control plane wrote to its data directory.
func (c *ControlPlane) joinToken() string {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, "join-token"))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dial connects to the control plane's gRPC port, verifying it against DATA/bundle.pem and
// presenting cert when not nil. The connection is closed when the test ends.
func (c *ControlPlane) dial(cert *tls.Certificate) *grpc.ClientConn {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Dir, "bundle.pem"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		c.t.Fatal("bundle.pem holds no certificate")
	}
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(c.GRPC, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// sign has the control plane certify the SPIFFE ID id, authenticated by its join token.
func (c *ControlPlane) sign(id string) *tls.Certificate {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	u, err := url.Parse(id)
	if err != nil {
		c.t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.joinToken())
	resp, err := controlv1.NewIdentityClient(c.dial(nil)).Sign(ctx, &controlv1.SignRequest{Csr: csr})
	if err != nil {
		c.t.Fatalf("sign %s: %v", id, err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		c.t.Fatal(err)
	}
	return &tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key, Leaf: leaf}
}

// registerWorkload registers w with the control plane as the identity cert names, and keeps it
// alive with a heartbeat every 500ms (registering it again whenever the control plane has lost
// it, as after a restart) until the test ends.
func (c *ControlPlane) registerWorkload(cert *tls.Certificate, w *controlv1.Workload) {
	c.t.Helper()
	reg := controlv1.NewRegistryClient(c.dial(cert))
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	_, err := reg.Register(ctx, &controlv1.RegisterRequest{Workload: w})
	cancel()
	if err != nil {
		c.t.Fatalf("register %s: %v", w.GetId(), err)
	}
	loopCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(loopCtx, 2*time.Second)
			_, err := reg.Heartbeat(ctx, &controlv1.HeartbeatRequest{Id: w.GetId(), Health: "healthy"})
			if status.Code(err) == codes.NotFound {
				_, _ = reg.Register(ctx, &controlv1.RegisterRequest{Workload: w})
			}
			cancel()
		}
	}()
	c.t.Cleanup(func() {
		stop()
		wg.Wait()
	})
}

// startControlGateway starts `meshgate gateway --control` against c with its data directory
// dir and admin API on admin, and waits until the admin API is ready.
func startControlGateway(t *testing.T, c *ControlPlane, dir, admin string) *Meshgate {
	t.Helper()
	p := startProcess(t, "meshgate gateway --control", meshgateBin, "gateway",
		"--control", c.GRPC, "--control-ca", filepath.Join(c.Dir, "bundle.pem"),
		"--join-token-file", filepath.Join(c.Dir, "join-token"), "--data-dir", dir,
		"--admin", admin, "--log-level", "debug")
	m := &Meshgate{Process: p, Admin: admin}
	m.waitReady()
	return m
}

// getBody sends GET url once and returns the status and body, or ok false when the request
// failed.
func getBody(url string) (code int, body string, ok bool) {
	c := newHTTPClient()
	c.Timeout = 2 * time.Second
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", false
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String(), true
}

// waitServes polls GET url until it answers 200 with a body containing want, failing the test
// after d.
func waitServes(t *testing.T, d time.Duration, url, want string) {
	t.Helper()
	var last string
	ok := pollUntil(d, func() bool {
		code, body, ok := getBody(url)
		last = strings.TrimSpace(body)
		return ok && code == 200 && strings.Contains(body, want)
	})
	if !ok {
		t.Fatalf("GET %s did not answer 200 with %q within %v (last body %q)", url, want, d, last)
	}
}
