package acmetest_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/testpki"
	"github.com/meshgate/meshgate/internal/testport"
)

// TestMain fails the package when a test leaves a goroutine behind, except two that certmagic
// starts and gives no way to stop:
//   - a rate limiter per ACME directory and account, created on the first order and kept for the
//     life of the process;
//   - the refresher of a storage lock file, which polls every 5 seconds and ends on the first
//     poll after the lock is released, so it may outlive the gateway by that long.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.(*RingBufferRateLimiter).loop"),
		goleak.IgnoreAnyFunction("github.com/caddyserver/certmagic.keepLockfileFresh"),
	)
}

// obtainTimeout bounds the wait for a certificate from pebble.
const obtainTimeout = 30 * time.Second

// testLogger returns the gateways' logger: discarded unless MESHGATE_TEST_LOG is set, then
// stderr at debug level.
func testLogger() *slog.Logger {
	if os.Getenv("MESHGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// lockedBuffer collects a child process's output; safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freePort returns a loopback port that is free now (see testport).
func freePort(t *testing.T) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(testport.Addr(t))
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// requireProgram returns the path of an installed program, failing the test when it is missing.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (scripts/test-deps installs it, from the Debian package pebble); "+
			"the ACME tests need a real ACME server", name)
	}
	return p
}

// child is a program the test runs; it is killed when the test ends.
type child struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

// startChild starts a program with extra environment variables, its output collected.
func startChild(t *testing.T, env []string, bin string, args ...string) *child {
	t.Helper()
	c := &child{name: filepath.Base(bin), cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", c.name, err)
	}
	go func() { _ = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("%s output:\n%s", c.name, c.out.String())
		}
	})
	return c
}

// waitFor polls ok every 50ms until it returns true or d passes; it reports whether ok did.
func waitFor(d time.Duration, ok func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// pebble is a running pebble ACME server.
type pebble struct {
	// DirectoryURL is its ACME directory.
	DirectoryURL string
	// CAFile is the PEM file of the CA its HTTPS certificates chain to.
	CAFile string
	// Roots holds the root pebble signs issued certificates with.
	Roots *x509.CertPool

	proc *child
	mgmt string
	http *http.Client
}

// pebbleOptions tune startPebble.
type pebbleOptions struct {
	// AlwaysValid makes pebble accept every challenge without validating it.
	AlwaysValid bool
	// DNSServer, when set, is the DNS server pebble resolves names to validate with.
	DNSServer string
	// TLSPort is the port pebble validates TLS-ALPN-01 challenges on.
	TLSPort int
	// HTTPPort is the port pebble validates HTTP-01 challenges on.
	HTTPPort int
}

// startPebble runs pebble on loopback ports with an HTTPS certificate of a test CA written to
// dir, and waits until its directory answers.
func startPebble(t *testing.T, dir string, opts pebbleOptions) *pebble {
	t.Helper()
	bin := requireProgram(t, "pebble")
	pki := testpki.New(t, dir, "localhost")
	tlsCert := pki.Certs["localhost"]
	listen, mgmt := freePort(t), freePort(t)
	if opts.TLSPort == 0 {
		opts.TLSPort = freePort(t)
	}
	if opts.HTTPPort == 0 {
		opts.HTTPPort = freePort(t)
	}
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", listen),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    tlsCert.Cert,
		"privateKey":                     tlsCert.Key,
		"httpPort":                       opts.HTTPPort,
		"tlsPort":                        opts.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	data, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, data, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}
	if opts.AlwaysValid {
		env = append(env, "PEBBLE_VA_ALWAYS_VALID=1")
	}
	args := []string{"-config", confFile}
	if opts.DNSServer != "" {
		args = append(args, "-dnsserver", opts.DNSServer)
	}
	p := &pebble{
		DirectoryURL: fmt.Sprintf("https://localhost:%d/dir", listen),
		CAFile:       pki.CAFile,
		proc:         startChild(t, env, bin, args...),
		mgmt:         fmt.Sprintf("https://localhost:%d", mgmt),
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}
	t.Cleanup(tr.CloseIdleConnections)
	p.http = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	if !waitFor(10*time.Second, func() bool {
		resp, err := p.http.Get(p.DirectoryURL)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("pebble did not answer at %s:\n%s", p.DirectoryURL, p.proc.out.String())
	}
	p.Roots = x509.NewCertPool()
	if !p.Roots.AppendCertsFromPEM(p.get(t, "/roots/0")) {
		t.Fatal("pebble's /roots/0 holds no certificate")
	}
	return p
}

// get returns the body of a GET of path on pebble's management interface.
func (p *pebble) get(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := p.http.Get(p.mgmt + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return body
}

// issued counts the certificates pebble has issued, from its log.
func (p *pebble) issued() int {
	return strings.Count(p.proc.out.String(), "Issued certificate serial")
}

// startUpstream starts an HTTP server answering "upstream NAME PATH"; it is closed when the test ends.
func startUpstream(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream %s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// recorder is a slog handler that keeps every message (at any level) and passes records on to
// the test logger.
type recorder struct {
	mu   *sync.Mutex
	msgs *[]string
	next slog.Handler
}

func newRecorder() *recorder {
	return &recorder{mu: &sync.Mutex{}, msgs: new([]string), next: testLogger().Handler()}
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.msgs = append(*r.msgs, rec.Message)
	r.mu.Unlock()
	if r.next.Enabled(ctx, rec.Level) {
		return r.next.Handle(ctx, rec)
	}
	return nil
}

func (r *recorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &recorder{mu: r.mu, msgs: r.msgs, next: r.next.WithAttrs(attrs)}
}

func (r *recorder) WithGroup(name string) slog.Handler {
	return &recorder{mu: r.mu, msgs: r.msgs, next: r.next.WithGroup(name)}
}

// count returns how many messages recorded so far contain sub.
func (r *recorder) count(sub string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range *r.msgs {
		if strings.Contains(m, sub) {
			n++
		}
	}
	return n
}

// startGateway returns a gateway running the config yaml, shut down when the test ends.
func startGateway(t *testing.T, yaml string) *gateway.Gateway {
	t.Helper()
	return startGatewayLog(t, testLogger(), yaml)
}

// startGatewayLog is startGateway with the gateway logging to log.
func startGatewayLog(t *testing.T, log *slog.Logger, yaml string) *gateway.Gateway {
	t.Helper()
	gw := gateway.New(log, metrics.New())
	t.Cleanup(func() { shutdown(t, gw) })
	if _, err := gw.LoadBytes("test.yaml", []byte(yaml)); err != nil {
		t.Fatalf("config refused: %v\nconfig:\n%s", err, yaml)
	}
	return gw
}

// shutdown shuts gw down, failing the test when it takes more than ten seconds. Twice is allowed.
func shutdown(t *testing.T, gw *gateway.Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Errorf("gateway shutdown: %v", err)
	}
}

// acmeConfig is the config of a gateway with one https listener at address whose certificates
// come from the ACME directory of p for domain (with the extra TLS lines extra), routing
// everything to the upstream at up.
func acmeConfig(p *pebble, address, domain, email, storage, extra, up string) string {
	return fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - name: secure
    address: %q
    protocol: https
    tls:
      acme:
        domains: [%q]
        email: %q
        directoryURL: %q
        caRoots: %q
        storage: %q
        agreeToTerms: true
%sroutes:
  - name: all
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, address, domain, email, p.DirectoryURL, p.CAFile, storage, extra, up)
}

// handshake dials addr and completes a TLS handshake with tc.
func handshake(addr string, tc *tls.Config) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, tc)
}

// waitIssued waits until a handshake with server name domain on addr verifies against pebble's
// root (chain and name) and returns the leaf certificate served.
func waitIssued(t *testing.T, p *pebble, addr, domain string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	var last error
	if !waitFor(obtainTimeout, func() bool {
		c, err := handshake(addr, &tls.Config{ServerName: domain, RootCAs: p.Roots})
		if err != nil {
			last = err
			return false
		}
		defer c.Close()
		leaf = c.ConnectionState().PeerCertificates[0]
		return true
	}) {
		t.Fatalf("no certificate from pebble for %s within %v; last handshake: %v", domain, obtainTimeout, last)
	}
	return leaf
}

// verifyChain checks that chain (leaf first) is valid for domain up to pebble's root, through
// pebble's intermediate.
func verifyChain(t *testing.T, p *pebble, chain []*x509.Certificate, domain string) {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{DNSName: domain, Roots: p.Roots, Intermediates: inter}); err != nil {
		t.Fatalf("served chain does not verify against pebble's root: %v", err)
	}
	block, _ := pem.Decode(p.get(t, "/intermediates/0"))
	if block == nil {
		t.Fatal("pebble's /intermediates/0 holds no certificate")
	}
	if ic := chain[len(chain)-1]; !bytes.Equal(ic.Raw, block.Bytes) {
		t.Errorf("served chain ends with %q, not pebble's intermediate", ic.Subject.CommonName)
	}
}

// get sends GET path over a new connection to addr with server name domain and the rest of tc
// (roots, client certificate, protocols), and returns the status and body.
func get(t *testing.T, addr, domain, path string, tc *tls.Config) (int, string) {
	t.Helper()
	tc = tc.Clone()
	tc.ServerName = domain
	tr := &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + domain + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// storedCerts lists the certificate files in an ACME storage directory.
func storedCerts(t *testing.T, storage string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".crt") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestACMEObtainServeReload: a listener with only tls.acme gets a certificate from pebble
// (challenges accepted without validation) for its domain, serves it with pebble's chain and
// proxies requests over it; unmanaged server names get the managed certificate too, as the
// listener has no other. The storage directory is private (0700). Reloading the same config
// keeps the manager; a changed ACME block (another account email, same storage) and a new
// gateway on the same storage load the stored certificate: pebble issues exactly one.
func TestACMEObtainServeReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startPebble(t, dir, pebbleOptions{AlwaysValid: true})
	up := startUpstream(t, "app")
	const domain = "acme.example.test"
	storage := filepath.Join(dir, "acme-storage")
	yaml := acmeConfig(p, "127.0.0.1:0", domain, "ops@example.test", storage, "", up)
	gw := startGateway(t, yaml)
	addr := gw.Addr("secure").String()

	st, err := os.Stat(storage)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("storage directory mode %o, want 700", perm)
	}

	leaf := waitIssued(t, p, addr, domain)
	c, err := handshake(addr, &tls.Config{ServerName: domain, RootCAs: p.Roots})
	if err != nil {
		t.Fatal(err)
	}
	verifyChain(t, p, c.ConnectionState().PeerCertificates, domain)
	if np := c.ConnectionState().NegotiatedProtocol; np != "" {
		t.Errorf("negotiated %q without ALPN", np)
	}
	c.Close()
	if n := p.issued(); n != 1 {
		t.Errorf("pebble issued %d certificates, want 1", n)
	}
	if files := storedCerts(t, storage); len(files) != 1 {
		t.Errorf("certificate files in storage: %v, want one", files)
	}

	// Requests are proxied over the certificate, HTTP/2 and HTTP/1.1.
	roots := &tls.Config{RootCAs: p.Roots}
	if status, body := get(t, addr, domain, "/hello", roots); status != 200 || body != "upstream app /hello" {
		t.Fatalf("h2 GET: %d %q", status, body)
	}
	h1 := &tls.Config{RootCAs: p.Roots, NextProtos: []string{"http/1.1"}}
	if status, body := get(t, addr, domain, "/h1", h1); status != 200 || body != "upstream app /h1" {
		t.Fatalf("http/1.1 GET: %d %q", status, body)
	}

	// Without configured certificates, another server name (or none) gets the managed one.
	for _, sni := range []string{"other.example.test", ""} {
		c, err := handshake(addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("handshake with server name %q: %v", sni, err)
		}
		if got := c.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Errorf("server name %q got certificate %v, want the managed one", sni, got.DNSNames)
		}
		c.Close()
	}

	// The same config again: the manager is kept, nothing is obtained or reloaded.
	reload(t, gw, yaml)
	sameSerial(t, waitIssued(t, p, addr, domain), leaf)

	// Another account email makes a new manager on the same storage: it loads the stored
	// certificate (the listener serves it again once loaded) instead of ordering one.
	reload(t, gw, strings.Replace(yaml, "ops@example.test", "other@example.test", 1))
	sameSerial(t, waitIssued(t, p, addr, domain), leaf)

	// A new gateway on the same storage, as after a restart, loads it too.
	shutdown(t, gw)
	gw2 := startGateway(t, yaml)
	sameSerial(t, waitIssued(t, p, gw2.Addr("secure").String(), domain), leaf)
	if n := p.issued(); n != 1 {
		t.Errorf("pebble issued %d certificates after the reloads and the restart, want 1", n)
	}
	if files := storedCerts(t, storage); len(files) != 1 {
		t.Errorf("certificate files in storage: %v, want one", files)
	}
}

// TestACMEChallengeOnListener: with pebble validating for real, the listener itself answers the
// TLS-ALPN-01 challenge (pebble resolves the domain to loopback through pebble-challtestsrv and
// completes an acme-tls/1 handshake with the listener's port), even though the listener requires
// client certificates. The managed domain gets the ACME certificate; the configured certificate
// keeps serving its own name and any other; acme-tls/1 for a name not managed is refused.
func TestACMEChallengeOnListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dnsAddr := startChallDNS(t)
	gwPort := freePort(t)
	p := startPebble(t, dir, pebbleOptions{DNSServer: dnsAddr, TLSPort: gwPort})

	pkiDir := filepath.Join(dir, "pki")
	if err := os.Mkdir(pkiDir, 0o700); err != nil {
		t.Fatal(err)
	}
	pki := testpki.New(t, pkiDir, "static.example.test")
	static := pki.Certs["static.example.test"]
	client := pki.Client("client", "example")
	up := startUpstream(t, "app")
	const domain = "alpn.example.test"
	extra := fmt.Sprintf("      certificates: [{cert: %q, key: %q}]\n      clientCA: %q\n      clientAuth: require\n",
		static.Cert, static.Key, pki.CAFile)
	yaml := acmeConfig(p, fmt.Sprintf("127.0.0.1:%d", gwPort), domain, "", filepath.Join(dir, "acme"), extra, up)
	rec := newRecorder()
	gw := startGatewayLog(t, slog.New(rec), yaml)
	addr := gw.Addr("secure").String()

	withClient := &tls.Config{RootCAs: p.Roots, Certificates: []tls.Certificate{client.Pair}}
	var leaf *x509.Certificate
	var last error
	if !waitFor(obtainTimeout, func() bool {
		tc := withClient.Clone()
		tc.ServerName = domain
		c, err := handshake(addr, tc)
		if err != nil {
			last = err
			return false
		}
		defer c.Close()
		leaf = c.ConnectionState().PeerCertificates[0]
		verifyChain(t, p, c.ConnectionState().PeerCertificates, domain)
		return true
	}) {
		t.Fatalf("no certificate from pebble for %s within %v; last handshake: %v", domain, obtainTimeout, last)
	}
	// pebble validated for real (the order would have failed otherwise): its handshakes got the
	// challenge certificate from the listener.
	if n := rec.count("served key authentication certificate"); n == 0 {
		t.Errorf("the listener served no TLS-ALPN-01 challenge certificate")
	}
	if status, body := get(t, addr, domain, "/x", withClient); status != 200 || body != "upstream app /x" {
		t.Fatalf("GET: %d %q", status, body)
	}

	// Other names get the configured certificate.
	for _, sni := range []string{"static.example.test", "other.example.test"} {
		tc := withClient.Clone()
		tc.ServerName, tc.InsecureSkipVerify = sni, true
		c, err := handshake(addr, tc)
		if err != nil {
			t.Fatalf("server name %q: %v", sni, err)
		}
		if got := c.ConnectionState().PeerCertificates[0]; got.SerialNumber.Cmp(static.Leaf.SerialNumber) != 0 {
			t.Errorf("server name %q got %v, want the configured certificate", sni, got.DNSNames)
		}
		c.Close()
	}
	if leaf.SerialNumber.Cmp(static.Leaf.SerialNumber) == 0 {
		t.Fatal("the managed domain got the configured certificate")
	}

	// A client offering only acme-tls/1 (as a CA does) for a name that is not managed fails the
	// handshake; the listener closes a connection that negotiated acme-tls/1 without reading HTTP.
	if c, err := handshake(addr, &tls.Config{ServerName: "static.example.test", InsecureSkipVerify: true,
		NextProtos: []string{"acme-tls/1"}}); err == nil {
		c.Close()
		t.Error("acme-tls/1 handshake for an unmanaged name succeeded")
	}
}

// TestACMEHTTPChallenge: with challenge http-01, pebble validates for real over plain HTTP: a
// GET of /.well-known/acme-challenge/TOKEN on the gateway's http listener (pebble resolves the
// domain to loopback) is answered with the key authorization before routing, and the https
// listener then serves the certificate. Other paths of the http listener are routed as ever.
func TestACMEHTTPChallenge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dnsAddr := startChallDNS(t)
	httpPort := freePort(t)
	p := startPebble(t, dir, pebbleOptions{DNSServer: dnsAddr, HTTPPort: httpPort})
	up := startUpstream(t, "app")
	const domain = "http01.example.test"
	extra := fmt.Sprintf("        challenge: http-01\n        httpListener: web\n  - name: web\n    address: \"127.0.0.1:%d\"\n    protocol: http\n", httpPort)
	yaml := acmeConfig(p, fmt.Sprintf("127.0.0.1:%d", freePort(t)), domain, "", filepath.Join(dir, "acme"), extra, up)
	rec := newRecorder()
	gw := startGatewayLog(t, slog.New(rec), yaml)
	leaf := waitIssued(t, p, gw.Addr("secure").String(), domain)
	if leaf == nil {
		t.Fatal("no certificate")
	}
	// pebble validated for real: the http listener answered its GETs itself.
	answered := 0
	for _, r := range gw.Records().Ring().Recent(nil, 1000) {
		if r.Reason == "acme_challenge" && r.Listener == "web" && r.Status == 200 {
			answered++
		}
	}
	if answered == 0 {
		t.Error("the http listener answered no HTTP-01 challenge")
	}
	// The plain listener still routes everything else.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/.well-known/acme-challenge/not-a-token", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream app /.well-known/acme-challenge/not-a-token" {
		t.Errorf("a path that is no active challenge: %d %q, want it routed to the upstream", resp.StatusCode, body)
	}
}

// startChallDNS starts pebble-challtestsrv as the DNS server pebble resolves challenge domains
// with (every name to loopback) and returns its address once it answers.
func startChallDNS(t *testing.T) string {
	t.Helper()
	dnsBin := requireProgram(t, "pebble-challtestsrv")
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dns := startChild(t, nil, dnsBin, "-dns01", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	if !waitFor(10*time.Second, func() bool { return dnsUp(dnsAddr) }) {
		t.Fatalf("pebble-challtestsrv did not start:\n%s", dns.out.String())
	}
	return dnsAddr
}

// dnsUp reports whether a DNS server answers on the UDP address (a query for a test name).
func dnsUp(addr string) bool {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", addr)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := r.LookupHost(ctx, "probe.example.test")
	return err == nil
}

// reload applies yaml to gw, failing the test when it is refused.
func reload(t *testing.T, gw *gateway.Gateway, yaml string) {
	t.Helper()
	if _, err := gw.LoadBytes("test.yaml", []byte(yaml)); err != nil {
		t.Fatalf("config refused: %v", err)
	}
}

// sameSerial fails the test when got is not the certificate want.
func sameSerial(t *testing.T, got, want *x509.Certificate) {
	t.Helper()
	if got.SerialNumber.Cmp(want.SerialNumber) != 0 {
		t.Errorf("served certificate serial %s, want %s (a second certificate was obtained)",
			hexSerial(got.SerialNumber), hexSerial(want.SerialNumber))
	}
}

func hexSerial(n *big.Int) string { return n.Text(16) }
