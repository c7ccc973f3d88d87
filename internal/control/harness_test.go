package control

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/store"
)

// testClock is a settable clock for the control plane; zero offset is the real time.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) set(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

// plane is a control plane under test on loopback ports, with an embedded store.
type plane struct {
	*Server
	dir   string
	clock *testClock
	token string
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// startPlane starts a control plane with a bolt store in a temporary directory; mut may change
// its options first.
func startPlane(t *testing.T, mut func(*Options)) *plane {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "control.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	opts := Options{
		Store: st, DataDir: dir, GRPCAddress: "127.0.0.1:0", XDSAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0",
		PushDebounce: 10 * time.Millisecond, WorkloadTTL: 5 * time.Second, Log: testLogger(t), Now: clock.now,
	}
	if mut != nil {
		mut(&opts)
	}
	s, err := New(opts)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		_ = s.Close()
		_ = st.Close()
	})
	tok, err := os.ReadFile(filepath.Join(dir, JoinTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &plane{Server: s, dir: dir, clock: clock, token: strings.TrimSpace(string(tok))}
}

// bundlePool reads the trust bundle the plane wrote for proxies.
func (p *plane) bundleFilePool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dir, BundleFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("bundle.pem holds no certificate")
	}
	return pool
}

// dial connects to the plane's gRPC port, verifying it against bundle.pem, presenting cert when
// not nil.
func (p *plane) dial(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	tc := &tls.Config{RootCAs: p.bundleFilePool(t), ServerName: "localhost", MinVersion: tls.VersionTLS12, Time: p.clock.now}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(p.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// csrFor makes a key and a CSR for the SPIFFE ID id.
func csrFor(t *testing.T, id string) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

// sign asks the plane to certify id, with the join token tok when not empty, over conn.
func sign(t *testing.T, conn *grpc.ClientConn, tok, id string) (*tls.Certificate, error) {
	t.Helper()
	key, csr := csrFor(t, id)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	resp, err := controlv1.NewIdentityClient(conn).Sign(ctx, &controlv1.SignRequest{Csr: csr})
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificateChain()[0])
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: resp.GetCertificateChain(), PrivateKey: key, Leaf: leaf}, nil
}

// mustSign certifies id with the plane's bootstrap token.
func (p *plane) mustSign(t *testing.T, id string) *tls.Certificate {
	t.Helper()
	c, err := sign(t, p.dial(t, nil), p.token, id)
	if err != nil {
		t.Fatalf("sign %s: %v", id, err)
	}
	return c
}

// authFailures returns the count of refusals for rpc and reason.
func (p *plane) authFailures(rpc, reason string) float64 {
	return testutil.ToFloat64(p.metrics.authFailures.WithLabelValues(rpc, reason))
}

// eventually polls cond every 10ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
