package identity

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// signWith is a SignFunc backed by ca directly, asking for ttl.
func signWith(ca *CA, ttl time.Duration) SignFunc {
	return func(_ context.Context, csr []byte) ([][]byte, [][]byte, error) {
		chain, err := ca.Sign(csr, ttl, nil)
		if err != nil {
			return nil, nil, err
		}
		var bundle [][]byte
		for _, r := range ca.Bundle() {
			bundle = append(bundle, r.Raw)
		}
		return chain, bundle, nil
	}
}

// startSource starts a Source, stopped at the end of the test.
func startSource(t *testing.T, o SourceOptions) *Source {
	t.Helper()
	s, err := NewSource(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("Start returned before Ready")
	}
	return s
}

func rootCA(t *testing.T, td string, now func() time.Time) *CA {
	t.Helper()
	ca, err := NewRootCA(CAOptions{TrustDomain: td, CertTTL: time.Hour, MinTTL: time.Second, MaxTTL: 2 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustID(t *testing.T, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handshake runs one TLS handshake over 127.0.0.1 and returns each side's state and error.
func handshake(t *testing.T, server, client *tls.Config) (ss, cs tls.ConnectionState, serr, cerr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(c, server)
		if serr = tc.Handshake(); serr == nil {
			ss = tc.ConnectionState()
			// Wait for the client's byte, so a TLS 1.3 client learns of a refusal too.
			var b [1]byte
			_, _ = tc.Read(b[:])
			_, _ = tc.Write([]byte("k"))
		}
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, client)
	if cerr = tc.Handshake(); cerr == nil {
		cs = tc.ConnectionState()
		if _, err := tc.Write([]byte("p")); err == nil {
			var b [1]byte
			_, cerr = tc.Read(b[:])
		}
	}
	c.Close()
	<-done
	return ss, cs, serr, cerr
}

func TestMTLS(t *testing.T) {
	ca := rootCA(t, "mesh.local", nil)
	serverID := mustID(t, "spiffe://mesh.local/ns/shop/sa/orders")
	clientID := mustID(t, "spiffe://mesh.local/ns/shop/sa/web")
	server := startSource(t, SourceOptions{ID: serverID, Sign: signWith(ca, 0)})
	client := startSource(t, SourceOptions{ID: clientID, Sign: signWith(ca, 0)})

	// A workload of another trust domain, and one whose certificate expired.
	foreignCA := rootCA(t, "other.local", nil)
	foreign := startSource(t, SourceOptions{ID: mustID(t, "spiffe://other.local/ns/shop/sa/web"), Sign: signWith(foreignCA, 0)})
	past := func() time.Time { return time.Now().Add(-3 * time.Hour) }
	oldCA := rootCA(t, "mesh.local", past)
	stale := startSource(t, SourceOptions{ID: clientID, Sign: signWith(oldCA, time.Hour), Now: past})
	// The stale workload's certificate chains to a root the server trusts.
	if err := server.SetBundle(append(ca.BundlePEM(), oldCA.BundlePEM()...)); err != nil {
		t.Fatal(err)
	}
	// present makes a client that shows src's certificate and trusts any server, so only the
	// server's verdict is tested.
	present := func(src *Source) *tls.Config {
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return src.TLSCertificate() }}
	}

	tests := []struct {
		desc           string
		server, client *tls.Config
		serverOK       bool
		clientOK       bool
	}{
		{"both identities authorised", server.ServerTLSConfig(tlsconfig.AuthorizeID(clientID)), client.ClientTLSConfig(tlsconfig.AuthorizeID(serverID)), true, true},
		{"server refuses the client's identity", server.ServerTLSConfig(tlsconfig.AuthorizeID(serverID)), client.ClientTLSConfig(tlsconfig.AuthorizeAny()), false, false},
		{"client refuses the server's identity", server.ServerTLSConfig(tlsconfig.AuthorizeAny()), client.ClientTLSConfig(tlsconfig.AuthorizeID(clientID)), false, false},
		{"client of another trust domain", server.ServerTLSConfig(tlsconfig.AuthorizeAny()), present(foreign), false, false},
		{"client with an expired certificate", server.ServerTLSConfig(tlsconfig.AuthorizeAny()), present(stale), false, false},
		{"client without a certificate", server.ServerTLSConfig(tlsconfig.AuthorizeAny()), &tls.Config{InsecureSkipVerify: true}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ss, cs, serr, cerr := handshake(t, tc.server, tc.client)
			if (serr == nil) != tc.serverOK || (cerr == nil) != tc.clientOK {
				t.Fatalf("server err %v, client err %v", serr, cerr)
			}
			if !tc.serverOK {
				return
			}
			if id, err := PeerID(ss); err != nil || id != clientID {
				t.Errorf("server sees %v (%v)", id, err)
			}
			if id, err := PeerID(cs); err != nil || id != serverID {
				t.Errorf("client sees %v (%v)", id, err)
			}
		})
	}
}

// TestRenewal runs a Source on real two-second certificates: it renews at half-life with a new
// key, retries a failed renewal, counts both in its metrics, and a TLS config built before the
// renewal presents the new certificate.
func TestRenewal(t *testing.T) {
	ca, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", CertTTL: 2 * time.Second, MinTTL: time.Second, MaxTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	sign := signWith(ca, 2*time.Second)
	flaky := func(ctx context.Context, csr []byte) ([][]byte, [][]byte, error) {
		if calls.Add(1) == 2 {
			return nil, nil, errors.New("control plane unreachable")
		}
		return sign(ctx, csr)
	}
	reg := prometheus.NewRegistry()
	id := mustID(t, "spiffe://mesh.local/ns/shop/sa/orders")
	src := startSource(t, SourceOptions{ID: id, Sign: flaky, TTL: 2 * time.Second, Registerer: reg})
	peer := startSource(t, SourceOptions{ID: mustID(t, "spiffe://mesh.local/ns/shop/sa/web"), Sign: signWith(ca, 0)})
	serverCfg := src.ServerTLSConfig(tlsconfig.AuthorizeAny())
	first, _ := src.GetX509SVID()

	start := time.Now()
	select {
	case <-src.Updated():
	case <-time.After(10 * time.Second):
		t.Fatal("no renewal")
	}
	elapsed := time.Since(start)
	second, _ := src.GetX509SVID()
	if !second.Certificates[0].NotAfter.After(first.Certificates[0].NotAfter) {
		t.Errorf("renewed certificate ends %s, the first %s", second.Certificates[0].NotAfter, first.Certificates[0].NotAfter)
	}
	if keyMatches(second.PrivateKey, first.Certificates[0].PublicKey) {
		t.Error("renewal kept the old key")
	}
	if calls.Load() != 3 {
		t.Errorf("%d sign calls, want 3 (first, failed renewal, renewal)", calls.Load())
	}
	t.Logf("renewed %s after start (half-life ~1s, one retry after 500ms)", elapsed.Round(10*time.Millisecond))

	ss, cs, serr, cerr := handshake(t, serverCfg, peer.ClientTLSConfig(tlsconfig.AuthorizeID(id)))
	if serr != nil || cerr != nil {
		t.Fatalf("handshake after renewal: %v / %v", serr, cerr)
	}
	_ = ss
	if got := cs.PeerCertificates[0].SerialNumber; got.Cmp(second.Certificates[0].SerialNumber) != 0 {
		// A renewal may have happened again in between; it must not be the first certificate.
		if got.Cmp(first.Certificates[0].SerialNumber) == 0 {
			t.Error("the server config still presents the first certificate")
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got["meshgate_identity_renewals_total{success}"] < 2 || got["meshgate_identity_renewals_total{failure}"] != 1 {
		t.Errorf("renewal counters %v", got)
	}
	if exp := got["meshgate_identity_certificate_expiry_timestamp_seconds"]; exp < float64(second.Certificates[0].NotAfter.Unix()) {
		t.Errorf("expiry gauge %v, certificate ends %d", exp, second.Certificates[0].NotAfter.Unix())
	}
}

func TestPersistence(t *testing.T) {
	clk := newClock()
	ca := rootCA(t, "mesh.local", clk.Now)
	id := mustID(t, "spiffe://mesh.local/ns/shop/sa/orders")
	dir := filepath.Join(t.TempDir(), "identity")
	var calls atomic.Int32
	counting := func(ctx context.Context, csr []byte) ([][]byte, [][]byte, error) {
		calls.Add(1)
		return signWith(ca, 0)(ctx, csr)
	}
	run := func(id spiffeid.ID) *Source {
		t.Helper()
		s, err := NewSource(SourceOptions{ID: id, Dir: dir, Sign: counting, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer func() { cancel(); s.Close() }()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	serial := func(s *Source) string {
		v, err := s.GetX509SVID()
		if err != nil {
			t.Fatal(err)
		}
		return v.Certificates[0].SerialNumber.String()
	}

	first := serial(run(id))
	if calls.Load() != 1 {
		t.Fatalf("%d sign calls", calls.Load())
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir: %v %v", fi.Mode(), err)
	}

	steps := []struct {
		desc    string
		prepare func()
		id      spiffeid.ID
		reissue bool
	}{
		{"restart with a valid certificate", func() {}, id, false},
		{"restart with a bundle that does not cover the certificate", func() {
			other := rootCA(t, "mesh.local", clk.Now)
			if err := os.WriteFile(filepath.Join(dir, bundleFile), other.BundlePEM(), 0o644); err != nil {
				t.Fatal(err)
			}
		}, id, true},
		{"restart with a key of another certificate", func() {
			k, _ := keyPEM(p256(t))
			if err := os.WriteFile(filepath.Join(dir, keyFile), k, 0o600); err != nil {
				t.Fatal(err)
			}
		}, id, true},
		{"restart with a damaged chain", func() {
			if err := os.WriteFile(filepath.Join(dir, chainFile), []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, id, true},
		{"restart after the certificate expired", func() { clk.Add(2 * time.Hour) }, id, true},
		{"restart again", func() {}, id, false},
		{"restart as another identity", func() {}, mustID(t, "spiffe://mesh.local/ns/shop/sa/web"), true},
	}
	prev := first
	for _, st := range steps {
		st.prepare()
		before := calls.Load()
		got := serial(run(st.id))
		reissued := calls.Load() != before
		if reissued != st.reissue || (got == prev) == st.reissue {
			t.Errorf("%s: reissued %v (serial %s, before %s)", st.desc, reissued, got, prev)
		}
		prev = got
	}
}

func TestStartAndBundle(t *testing.T) {
	ca := rootCA(t, "mesh.local", nil)
	id := mustID(t, "spiffe://mesh.local/ns/shop/sa/orders")
	var fail atomic.Bool
	fail.Store(true)
	sign := func(ctx context.Context, csr []byte) ([][]byte, [][]byte, error) {
		if fail.Load() {
			return nil, nil, errors.New("no route to the control plane")
		}
		return signWith(ca, 0)(ctx, csr)
	}
	if _, err := NewSource(SourceOptions{Sign: sign}); !errors.Is(err, ErrOptions) {
		t.Errorf("no ID: %v", err)
	}
	if _, err := NewSource(SourceOptions{ID: id}); !errors.Is(err, ErrOptions) {
		t.Errorf("no Sign: %v", err)
	}
	s, err := NewSource(SourceOptions{ID: id, Sign: sign})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); s.Close() }()
	if _, err := s.GetX509SVID(); err == nil {
		t.Error("a certificate before Start")
	}
	if !s.Expiry().IsZero() {
		t.Error("an expiry before Start")
	}
	if err := s.Start(ctx); err == nil {
		t.Fatal("Start succeeded while Sign fails")
	}
	fail.Store(false)
	if err := s.Start(ctx); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	if s.ID() != id || s.Expiry().IsZero() {
		t.Errorf("ID %s, expiry %s", s.ID(), s.Expiry())
	}
	if _, err := s.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("other.local")); err == nil {
		t.Error("a bundle for another trust domain")
	}

	for _, bad := range [][]byte{nil, []byte("junk"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")} {
		if err := s.SetBundle(bad); err == nil {
			t.Errorf("SetBundle(%q) accepted", bad)
		}
	}
	// A bundle that still covers the certificate: no renewal.
	next := rootCA(t, "mesh.local", nil)
	if err := s.SetBundle(append(ca.BundlePEM(), next.BundlePEM()...)); err != nil {
		t.Fatal(err)
	}
	b, err := s.GetX509BundleForTrustDomain(id.TrustDomain())
	if err != nil || len(b.X509Authorities()) != 2 {
		t.Fatalf("bundle after SetBundle: %v", err)
	}
	select {
	case <-s.Updated():
		t.Fatal("renewed though the bundle covers the certificate")
	case <-time.After(100 * time.Millisecond):
	}
	// A bundle without the certificate's root: renewal at once.
	if err := s.SetBundle(next.BundlePEM()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Updated():
	case <-time.After(5 * time.Second):
		t.Fatal("no renewal after the bundle dropped the certificate's root")
	}
}
