package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/meshgate/meshgate/internal/config"
)

// acmeTLSProto is the ALPN protocol of the TLS-ALPN-01 challenge (RFC 8737). A connection that
// negotiates it only proves control of a name to the CA and carries no HTTP.
const acmeTLSProto = "acme-tls/1"

// acmeSet is a gateway's automatic certificates: one manager per distinct ACME block (storage,
// directory, account and domains), all sharing one certificate cache whose background
// maintenance renews what they obtained. A manager is kept across reloads for as long as a
// listener uses the same block, so a reload neither obtains nor reloads anything; a block that
// no listener uses any more is stopped when the config that dropped it is applied.
//
// Applying a config is a transaction: prepare (while the listeners' TLS configs are built),
// then commit once the config is live, or abort when it is refused. Apply serialises them.
type acmeSet struct {
	log  *slog.Logger
	zlog *zap.Logger

	mu      sync.Mutex
	cache   *certmagic.Cache               // created with the first manager that starts
	active  map[string]*acmeManager        // started, by key
	pending map[string]*acmeManager        // prepared by the config being applied, not started
	used    map[string]bool                // keys the config being applied uses
	users   map[string][]string            // listener names of each key, in config order
	current atomic.Pointer[[]*acmeManager] // the active managers, for the cache's config lookups
	closed  bool
}

// acmeManager manages the certificates of one ACME block.
type acmeManager struct {
	key     string
	domains []string        // normalised, in config order
	names   map[string]bool // the same, for lookups
	storage string          // absolute directory
	block   config.ACME
	roots   *x509.CertPool // trusted for the CA's HTTPS; nil: the system roots

	run    atomic.Pointer[acmeRun] // nil until started
	cancel context.CancelFunc
}

// acmeRun is a started manager's certmagic config and the cache it puts certificates in.
type acmeRun struct {
	magic *certmagic.Config
	cache *certmagic.Cache
}

// newACMESet returns an empty set; it starts nothing until a config with ACME is applied.
func newACMESet(log *slog.Logger) *acmeSet {
	log = log.With("component", "acme")
	return &acmeSet{
		log:    log,
		zlog:   zap.New(&slogCore{h: log.Handler()}),
		active: map[string]*acmeManager{},
	}
}

// begin starts the transaction of one config.
func (s *acmeSet) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = map[string]*acmeManager{}
	s.used = map[string]bool{}
	s.users = map[string][]string{}
}

// prepare returns the manager of the ACME block a of the listener named listener: the running
// one when the block is unchanged, else a new one that starts on commit. It creates the storage
// directory (mode 0700) and loads the CA roots, so that a block that cannot work refuses the config.
func (s *acmeSet) prepare(cfg *config.Config, listener string, a *config.ACME) (*acmeManager, error) {
	storage, err := filepath.Abs(cfg.ResolvePath(a.Storage))
	if err != nil {
		return nil, fmt.Errorf("acme storage %s: %w", a.Storage, err)
	}
	domains := make([]string, 0, len(a.Domains))
	for _, d := range a.Domains {
		if d = normalizeName(d); !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	sorted := slices.Clone(domains)
	sort.Strings(sorted)
	key := strings.Join([]string{storage, a.DirectoryURL, a.Email, cfg.ResolvePath(a.CARoots),
		strconv.FormatBool(a.AgreeToTerms), strings.Join(sorted, ","), a.Challenge, a.HTTPListener}, "\x00")

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("gateway: shut down")
	}
	s.used[key] = true
	s.users[key] = append(s.users[key], listener)
	if m := s.active[key]; m != nil {
		return m, nil
	}
	if m := s.pending[key]; m != nil {
		return m, nil
	}
	if err := os.MkdirAll(storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme storage: %w", err)
	}
	if err := os.Chmod(storage, 0o700); err != nil {
		return nil, fmt.Errorf("acme storage: %w", err)
	}
	m := &acmeManager{key: key, domains: domains, names: map[string]bool{}, storage: storage, block: *a}
	for _, d := range domains {
		m.names[d] = true
	}
	if a.CARoots != "" {
		pool, err := cfg.LoadCertPool(a.CARoots)
		if err != nil {
			return nil, fmt.Errorf("acme CA roots %s: %w", a.CARoots, err)
		}
		m.roots = pool
	}
	s.pending[key] = m
	return m, nil
}

// abort forgets what the refused config prepared; nothing of it was started.
func (s *acmeSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending, s.used, s.users = nil, nil, nil
}

// commit makes the prepared managers the running ones once the config is live: managers no
// listener uses any more stop (their certificates leave the cache unless a kept manager has
// the same names), and new ones start managing their domains in the background. addr gives the
// bound address of a listener by name; the TLS-ALPN challenge is answered there.
func (s *acmeSet) commit(addr func(listener string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var stopped []*acmeManager
	for key, m := range s.active {
		if !s.used[key] {
			stopped = append(stopped, m)
			delete(s.active, key)
		}
	}
	for _, m := range stopped {
		m.stop()
	}
	if len(stopped) > 0 && s.cache != nil {
		var drop []certmagic.SubjectIssuer
		for _, m := range stopped {
			for _, d := range m.domains {
				if !s.keeps(d) {
					drop = append(drop, certmagic.SubjectIssuer{Subject: d})
				}
			}
		}
		s.cache.RemoveManaged(drop)
	}
	keys := make([]string, 0, len(s.pending))
	for key := range s.pending {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		m := s.pending[key]
		var at string
		for _, l := range s.users[key] {
			if at = addr(l); at != "" {
				break
			}
		}
		s.start(m, at, addr(m.block.HTTPListener))
		s.active[key] = m
	}
	s.publish()
	s.pending, s.used, s.users = nil, nil, nil
}

// keeps reports whether a running manager that stays manages the name. Callers hold s.mu and
// have removed the stopped managers from s.active but not yet added the new ones.
func (s *acmeSet) keeps(name string) bool {
	for _, m := range s.active {
		if m.names[name] {
			return true
		}
	}
	return false
}

// publish stores the active managers for configForCert. Callers hold s.mu.
func (s *acmeSet) publish() {
	list := make([]*acmeManager, 0, len(s.active))
	for _, m := range s.active {
		list = append(list, m)
	}
	s.current.Store(&list)
}

// start builds m's certmagic config and starts managing its domains: certificates in storage
// are loaded, missing ones obtained, all renewed before they expire. Callers hold s.mu.
func (s *acmeSet) start(m *acmeManager, addr, httpAddr string) {
	if s.cache == nil {
		s.cache = certmagic.NewCache(certmagic.CacheOptions{GetConfigForCert: s.configForCert, Logger: s.zlog})
	}
	magic := certmagic.New(s.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: m.storage},
		Logger:  s.zlog,
		OnEvent: s.onEvent,
	})
	tmpl := certmagic.ACMEIssuer{
		CA:           m.block.DirectoryURL,
		Email:        m.block.Email,
		Agreed:       m.block.AgreeToTerms,
		TrustedRoots: m.roots,
		// The listener answers TLS-ALPN-01 itself; HTTP-01 only when the block asks for it.
		DisableHTTPChallenge: true,
		Logger:               s.zlog,
	}
	// Pointing the challenge at the listener's own address makes certmagic find it in use and
	// leave the answering to the listener, instead of binding a challenge server of its own.
	if m.block.Challenge == config.ACMEHTTP01 {
		// HTTP-01: the plain-HTTP listener answers /.well-known/acme-challenge/ (acmeHTTP).
		tmpl.DisableHTTPChallenge, tmpl.DisableTLSALPNChallenge = false, true
		addr = httpAddr
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if p, err := strconv.Atoi(port); err == nil && p > 0 {
			tmpl.ListenHost = host
			if m.block.Challenge == config.ACMEHTTP01 {
				tmpl.AltHTTPPort = p
			} else {
				tmpl.AltTLSALPNPort = p
			}
		}
	}
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, tmpl)}
	m.run.Store(&acmeRun{magic: magic, cache: s.cache})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	if err := magic.ManageAsync(ctx, m.domains); err != nil {
		s.log.Error("acme: cannot manage certificates", "domains", m.domains, "error", err)
	}
	s.log.Info("acme: managing certificates", "domains", m.domains, "directory", m.block.DirectoryURL,
		"storage", m.storage)
}

// stop cancels m's obtains and renewals in flight.
func (m *acmeManager) stop() {
	if m.cancel != nil {
		m.cancel()
	}
}

// close stops every manager and the cache's maintenance. Later configs start nothing.
func (s *acmeSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, m := range s.active {
		m.stop()
	}
	s.active = map[string]*acmeManager{}
	s.publish()
	if s.cache != nil {
		s.cache.Stop()
		s.cache = nil
	}
}

// configForCert tells the cache's maintenance which config renews a managed certificate: the
// config of the running manager of one of its names.
func (s *acmeSet) configForCert(c certmagic.Certificate) (*certmagic.Config, error) {
	if list := s.current.Load(); list != nil {
		for _, m := range *list {
			run := m.run.Load()
			if run == nil {
				continue
			}
			for _, n := range c.Names {
				if m.names[normalizeName(n)] {
					return run.magic, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no ACME block manages %v any more", c.Names)
}

// onEvent logs certmagic's results worth an operator's attention: a certificate obtained or
// renewed, or an attempt that failed (certmagic retries with backoff). It never logs key material.
func (s *acmeSet) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained":
		s.log.Info("acme: certificate obtained", "identifier", data["identifier"], "renewal", data["renewal"],
			"issuer", data["issuer"])
	case "cert_failed":
		s.log.Warn("acme: obtaining a certificate failed; it will be retried", "identifier", data["identifier"],
			"renewal", data["renewal"], "error", data["error"])
	}
	return nil
}

// certificate serves a handshake for one of m's domains: the TLS-ALPN-01 challenge certificate
// when the CA validates, else the managed certificate. handled is false when the name is not
// m's, or its certificate is not there yet and other certificates may stand in.
func (m *acmeManager) certificate(hello *tls.ClientHelloInfo) (c *tls.Certificate, handled bool, err error) {
	name := normalizeName(hello.ServerName)
	challenge := isACMEChallenge(hello)
	if !m.names[name] {
		if challenge {
			return nil, true, fmt.Errorf("acme challenge for %q, which is not a managed domain", hello.ServerName)
		}
		return nil, false, nil
	}
	run := m.run.Load()
	if run == nil {
		if challenge {
			return nil, true, errors.New("acme challenge before certificate management started")
		}
		return nil, false, nil
	}
	c, err = run.magic.GetCertificate(hello)
	if challenge {
		return c, true, err
	}
	if err != nil || c == nil || len(c.Certificate) == 0 {
		return nil, false, nil
	}
	return c, true, nil
}

// anyCertificate returns the first managed certificate there is, in the order of m's domains, or nil.
func (m *acmeManager) anyCertificate() *tls.Certificate {
	run := m.run.Load()
	if run == nil {
		return nil
	}
	for _, d := range m.domains {
		if certs := run.cache.AllMatchingCertificates(d); len(certs) > 0 {
			c := certs[0].Certificate
			return &c
		}
	}
	return nil
}

// isACMEChallenge reports whether hello is a CA's TLS-ALPN-01 validation: it offers acme-tls/1
// and nothing else (RFC 8737).
func isACMEChallenge(hello *tls.ClientHelloInfo) bool {
	return len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmeTLSProto
}

// normalizeName lower-cases a DNS name, as certmagic does with server names.
func normalizeName(n string) string {
	return strings.ToLower(strings.TrimSpace(n))
}

// slogCore is a zap core writing to a slog handler, so that certmagic logs where the gateway
// does. certmagic's info messages narrate every step of an order and become debug records;
// onEvent reports the outcomes at info.
type slogCore struct {
	h slog.Handler
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l >= zapcore.ErrorLevel:
		return slog.LevelError
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}

// Enabled implements zapcore.LevelEnabler.
func (c *slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

// With implements zapcore.Core.
func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{h: c.h.WithAttrs(slogAttrs(fields))}
}

// Check implements zapcore.Core.
func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write implements zapcore.Core.
func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), "acme: "+e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(slogAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

// Sync implements zapcore.Core.
func (c *slogCore) Sync() error { return nil }

// slogAttrs converts zap fields to slog attributes, sorted by key.
func slogAttrs(fields []zapcore.Field) []slog.Attr {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
