package gateway

// The ACME tests against a real CA (pebble) are in the acmetest package; these need no CA and
// start no certificate management, so they leave no certmagic goroutine behind.

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/testpki"
)

// acmeTestConfig is a config with one https listener whose TLS block is tlsLines.
func acmeTestConfig(t *testing.T, dir, tlsLines string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - name: secure
    address: "127.0.0.1:0"
    protocol: https
    tls:
%sroutes:
  - name: all
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "127.0.0.1:9"}]
`, tlsLines)
	cfg, err := config.LoadBytes(filepath.Join(dir, "gateway.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// acmeLines is an ACME block for domains with storage (relative to the config file's directory).
func acmeLines(storage string, domains ...string) string {
	return fmt.Sprintf(`      acme:
        domains: [%s]
        directoryURL: "https://127.0.0.1:9/dir"
        storage: %q
        agreeToTerms: true
`, strings.Join(domains, ", "), storage)
}

// TestACMEPrepare: preparing an ACME block creates its storage directory with mode 0700 (and
// tightens an existing one), resolves it against the config file's directory, returns the same
// manager for the same block and a new one for other domains; a storage that cannot be created
// or CA roots that do not load fail.
func TestACMEPrepare(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "loose"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := newACMESet(slog.New(slog.DiscardHandler))
	cfg := acmeTestConfig(t, dir, acmeLines("loose/acme", "a.example.test"))
	s.begin()
	m1, err := s.prepare(cfg, "secure", cfg.Listeners[0].TLS.ACME)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.prepare(cfg, "other", cfg.Listeners[0].TLS.ACME)
	if err != nil || m2 != m1 {
		t.Fatalf("the same block got another manager (%v)", err)
	}
	cfg2 := acmeTestConfig(t, dir, acmeLines("loose", "A.example.test", "b.example.test"))
	m3, err := s.prepare(cfg2, "third", cfg2.Listeners[0].TLS.ACME)
	if err != nil || m3 == m1 {
		t.Fatalf("other domains got the same manager (%v)", err)
	}
	if strings.Join(m3.domains, ",") != "a.example.test,b.example.test" {
		t.Errorf("domains %v, want normalised", m3.domains)
	}
	for _, p := range []string{"loose/acme", "loose"} {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s: mode %o, want 700", p, perm)
		}
	}
	s.abort()
	if len(s.active) != 0 || s.cache != nil {
		t.Fatal("an aborted config left managers or a cache")
	}

	// Storage under a regular file cannot be created.
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := acmeTestConfig(t, dir, acmeLines("file/acme", "a.example.test"))
	s.begin()
	if _, err := s.prepare(bad, "secure", bad.Listeners[0].TLS.ACME); err == nil {
		t.Error("storage under a regular file was accepted")
	}
	s.abort()
	s.close()
}

// TestACMERefusedConfig: a gateway refuses a config whose ACME storage cannot be created, binds
// nothing for it, and applies the next good config.
func TestACMERefusedConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	pki := testpki.New(t, dir, "a.example.test")
	gw := New(slog.New(slog.DiscardHandler), metrics.New())
	defer func() { _ = gw.Shutdown(context.Background()) }()
	bad := acmeTestConfig(t, dir, acmeLines("file/acme", "a.example.test"))
	if _, err := gw.Apply(bad); err == nil || !strings.Contains(err.Error(), "acme storage") {
		t.Fatalf("Apply: %v, want an acme storage error", err)
	}
	if gw.Addr("secure") != nil {
		t.Fatal("the refused config's listener is bound")
	}
	good := acmeTestConfig(t, dir, fmt.Sprintf("      certificates: [{cert: %q, key: %q}]\n",
		pki.Certs["a.example.test"].Cert, pki.Certs["a.example.test"].Key))
	if _, err := gw.Apply(good); err != nil {
		t.Fatal(err)
	}
	if gw.acme.cache != nil || len(gw.acme.active) != 0 {
		t.Fatal("ACME state left by the refused config")
	}
}

// TestACMECertificateSelection: with a certificate in the managed cache (put there by hand, as
// no CA is involved), a managed name gets it, other names get the configured certificates, and
// without configured certificates any name gets the managed one; before anything is managed a
// listener without certificates fails the handshake. TLS-ALPN-01 validations are refused for
// names that are not managed, and the listener's config offers acme-tls/1 last and gives
// validations a config of their own without client authentication.
func TestACMECertificateSelection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testpki.New(t, dir, "managed.example.test", "static.example.test")
	managed, static := pki.Certs["managed.example.test"], pki.Certs["static.example.test"]
	cfg := acmeTestConfig(t, dir, fmt.Sprintf("      certificates: [{cert: %q, key: %q}]\n      clientCA: %q\n      clientAuth: require\n",
		static.Cert, static.Key, pki.CAFile)+acmeLines("acme", "managed.example.test"))
	log := slog.New(slog.DiscardHandler)
	s := newACMESet(log)
	s.begin()
	m, err := s.prepare(cfg, "secure", cfg.Listeners[0].TLS.ACME)
	if err != nil {
		t.Fatal(err)
	}
	s.abort()

	withCerts, err := buildTLS(cfg, cfg.Listeners[0].TLS, "listener", log, m)
	if err != nil {
		t.Fatal(err)
	}
	onlyACME := *cfg.Listeners[0].TLS
	onlyACME.Certificates, onlyACME.ClientCA, onlyACME.ClientAuth = nil, "", ""
	noCerts, err := buildTLS(cfg, &onlyACME, "listener", log, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(withCerts.NextProtos, ","); got != "h2,http/1.1,acme-tls/1" {
		t.Errorf("NextProtos %s", got)
	}
	hello := func(name string, protos ...string) *tls.ClientHelloInfo {
		return &tls.ClientHelloInfo{ServerName: name, SupportedProtos: protos}
	}
	if _, err := noCerts.GetCertificate(hello("managed.example.test")); err == nil {
		t.Error("a certificate was served before any was managed")
	}

	// Start the manager by hand: a cache and config, and no ManageAsync.
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return nil, fmt.Errorf("none") },
		Logger:           zap.NewNop(),
	})
	defer cache.Stop()
	magic := certmagic.New(cache, certmagic.Config{Storage: &certmagic.FileStorage{Path: m.storage}, Logger: zap.NewNop()})
	if _, err := magic.CacheUnmanagedTLSCertificate(context.Background(), managed.Pair, nil); err != nil {
		t.Fatal(err)
	}
	m.run.Store(&acmeRun{magic: magic, cache: cache})

	cases := []struct {
		tc   *tls.Config
		name string
		want string // "managed", "static" or "" for a failed handshake
	}{
		{withCerts, "managed.example.test", "managed"},
		{withCerts, "MANAGED.example.test", "managed"},
		{withCerts, "static.example.test", "static"},
		{withCerts, "other.example.test", "static"},
		{withCerts, "", "static"},
		{noCerts, "managed.example.test", "managed"},
		{noCerts, "other.example.test", "managed"},
		{noCerts, "", "managed"},
	}
	for _, c := range cases {
		got, err := c.tc.GetCertificate(hello(c.name, "h2", "http/1.1"))
		if err != nil {
			t.Errorf("%q: %v", c.name, err)
			continue
		}
		leaf := got.Leaf
		want := map[string]*tls.Certificate{"managed": &managed.Pair, "static": &static.Pair}[c.want]
		if leaf == nil || leaf.SerialNumber.Cmp(want.Leaf.SerialNumber) != 0 {
			t.Errorf("%q got %v, want the %s certificate", c.name, leaf.DNSNames, c.want)
		}
	}

	// A validation for a name that is not managed is refused, also by the config a validation gets.
	if _, err := withCerts.GetCertificate(hello("static.example.test", acmeTLSProto)); err == nil {
		t.Error("an acme-tls/1 hello for an unmanaged name got a certificate")
	}
	vc, err := withCerts.GetConfigForClient(hello("managed.example.test", acmeTLSProto))
	if err != nil || vc == nil {
		t.Fatalf("no config of its own for a validation: %v", err)
	}
	if vc.ClientAuth != tls.NoClientCert || strings.Join(vc.NextProtos, ",") != acmeTLSProto {
		t.Errorf("validation config: client auth %v, protocols %v", vc.ClientAuth, vc.NextProtos)
	}
	if _, err := vc.GetCertificate(hello("static.example.test", acmeTLSProto)); err == nil {
		t.Error("the validation config served an unmanaged name")
	}
	if c, _ := withCerts.GetConfigForClient(hello("managed.example.test", "h2", acmeTLSProto)); c != nil {
		t.Error("a hello offering more than acme-tls/1 got the validation config")
	}
}

// captured is a slog handler that keeps records, with the attributes given to WithAttrs.
type captured struct {
	mu    *sync.Mutex
	recs  *[]slog.Record
	attrs []slog.Attr
	level slog.Level
}

func (c *captured) Enabled(_ context.Context, l slog.Level) bool { return l >= c.level }

func (c *captured) Handle(_ context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(c.attrs...)
	c.mu.Lock()
	*c.recs = append(*c.recs, r)
	c.mu.Unlock()
	return nil
}

func (c *captured) WithAttrs(a []slog.Attr) slog.Handler {
	n := *c
	n.attrs = append(append([]slog.Attr{}, c.attrs...), a...)
	return &n
}

func (c *captured) WithGroup(string) slog.Handler { return c }

// TestSlogCore: certmagic's zap logs reach slog with their fields and logger name; its info
// messages become debug records, warnings and errors keep their level, and nothing below the
// handler's level is formatted.
func TestSlogCore(t *testing.T) {
	t.Parallel()
	recs := new([]slog.Record)
	h := &captured{mu: &sync.Mutex{}, recs: recs, level: slog.LevelDebug}
	z := zap.New(&slogCore{h: h}).Named("obtain").With(zap.String("ca", "https://ca.example.test"))
	z.Info("obtaining certificate", zap.String("identifier", "a.example.test"))
	z.Warn("slow", zap.Int("attempt", 2))
	z.Error("failed", zap.Error(fmt.Errorf("boom")))
	if len(*recs) != 3 {
		t.Fatalf("%d records", len(*recs))
	}
	want := []struct {
		level slog.Level
		msg   string
		attrs string
	}{
		{slog.LevelDebug, "acme: obtaining certificate", "logger=obtain identifier=a.example.test ca=https://ca.example.test"},
		{slog.LevelWarn, "acme: slow", "logger=obtain attempt=2 ca=https://ca.example.test"},
		{slog.LevelError, "acme: failed", "logger=obtain error=boom ca=https://ca.example.test"},
	}
	for i, r := range *recs {
		var attrs []string
		r.Attrs(func(a slog.Attr) bool {
			attrs = append(attrs, a.Key+"="+a.Value.String())
			return true
		})
		if r.Level != want[i].level || r.Message != want[i].msg || strings.Join(attrs, " ") != want[i].attrs {
			t.Errorf("record %d: %v %q %v, want %v %q %s", i, r.Level, r.Message, attrs, want[i].level, want[i].msg, want[i].attrs)
		}
	}
	quiet := &captured{mu: &sync.Mutex{}, recs: new([]slog.Record), level: slog.LevelInfo}
	zq := zap.New(&slogCore{h: quiet})
	if zq.Core().Enabled(zap.InfoLevel) {
		t.Error("certmagic's info messages are formatted for an info-level handler")
	}
	zq.Info("chatty")
	zq.Warn("kept")
	if len(*quiet.recs) != 1 {
		t.Errorf("%d records at info level, want the warning only", len(*quiet.recs))
	}
}
