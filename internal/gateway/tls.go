package gateway

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// certCheckInterval is how often, at most, a TLS listener looks at its certificate files for a
// change (on a handshake; an idle listener does not look).
const certCheckInterval = time.Second

// serverTLS builds the TLS config of an https listener (or the admin API): its certificates
// chosen by SNI (the first certificate whose names match; the first one when none does) and
// reloaded when their files change, TLS 1.2 or later with Go's modern cipher suites (or the
// listed ones), client certificates verified against the client CA when one is set, and ALPN
// h2 then http/1.1. With ACME, the managed certificates of its domains come first (see
// certSource.certificate) and the listener answers the CA's TLS-ALPN-01 challenges; acme is
// where the listener's ACME manager is prepared.
func serverTLS(cfg *config.Config, l *config.Listener, log *slog.Logger, acme *acmeSet) (*tls.Config, error) {
	if l.TLS == nil {
		return nil, nil
	}
	var m *acmeManager
	if l.TLS.ACME != nil && acme != nil {
		var err error
		if m, err = acme.prepare(cfg, l.Name, l.TLS.ACME); err != nil {
			return nil, fmt.Errorf("listener %q: %w", l.Name, err)
		}
	}
	return buildTLS(cfg, l.TLS, "listener "+fmt.Sprintf("%q", l.Name), log, m)
}

// buildTLS builds the server TLS config t describes; what names the owner in errors and logs;
// m, when not nil, manages the ACME certificates.
func buildTLS(cfg *config.Config, t *config.ListenerTLS, what string, log *slog.Logger, m *acmeManager) (*tls.Config, error) {
	src, err := newCertSource(cfg, t.Certificates, what, log)
	if err != nil {
		return nil, err
	}
	src.acme = m
	minVersion := uint16(tls.VersionTLS12)
	if t.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	tc := &tls.Config{
		GetCertificate: src.certificate,
		MinVersion:     minVersion,
		NextProtos:     []string{"h2", "http/1.1"},
		CurvePreferences: []tls.CurveID{
			tls.X25519MLKEM768, tls.X25519, tls.CurveP256,
		},
	}
	if len(t.CipherSuites) > 0 {
		ids, err := cipherSuiteIDs(t.CipherSuites)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		tc.CipherSuites = ids
	}
	if t.ClientCA != "" {
		pool, err := cfg.LoadCertPool(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("%s: client CA %s: %w", what, t.ClientCA, err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == config.ClientAuthRequire {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if m != nil {
		// acme-tls/1 comes last: the server's order wins, and only a CA validating offers it.
		tc.NextProtos = append(tc.NextProtos, acmeTLSProto)
		// A CA's validation presents no client certificate and may not speak TLS 1.3 only: it
		// gets a config of its own that serves the challenge certificate and nothing else.
		challenge := &tls.Config{
			GetCertificate: src.certificate,
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{acmeTLSProto},
		}
		tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if isACMEChallenge(hello) {
				return challenge, nil
			}
			return nil, nil
		}
	}
	return tc, nil
}

// cipherSuiteIDs maps Go cipher-suite names to their IDs; insecure suites are refused.
func cipherSuiteIDs(names []string) ([]uint16, error) {
	known := make(map[string]uint16)
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = cs.ID
	}
	ids := make([]uint16, 0, len(names))
	for _, n := range names {
		id, ok := known[n]
		if !ok {
			return nil, fmt.Errorf("cipher suite %q is not a secure suite Go supports", n)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// certSource serves a listener's certificates and reloads them when their files change, so
// that a renewed certificate is used by new connections without a config reload, and open
// connections are untouched. A change that does not load (a half-written file, a key that does
// not match) keeps the previous certificates and is logged; it is tried again on the next change.
type certSource struct {
	cfg   *config.Config
	files []config.Certificate
	what  string
	log   *slog.Logger
	acme  *acmeManager // nil without ACME

	current   atomic.Pointer[certSet]
	nextCheck atomic.Int64 // unix nanoseconds of the next look at the files
	mu        sync.Mutex   // serialises reloads
}

// certSet is one loaded generation of certificates and the file states it came from.
type certSet struct {
	certs []tls.Certificate
	stamp []fileStamp
}

// fileStamp is what tells a changed file: its size and modification time.
type fileStamp struct {
	size int64
	mod  time.Time
}

// newCertSource loads files, failing when any of them does not load.
func newCertSource(cfg *config.Config, files []config.Certificate, what string, log *slog.Logger) (*certSource, error) {
	s := &certSource{cfg: cfg, files: files, what: what, log: log}
	set, err := s.load()
	if err != nil {
		return nil, err
	}
	s.current.Store(set)
	s.nextCheck.Store(time.Now().Add(certCheckInterval).UnixNano())
	return s, nil
}

// load reads every certificate and key.
func (s *certSource) load() (*certSet, error) {
	set := &certSet{}
	for _, c := range s.files {
		certPath, keyPath := s.cfg.ResolvePath(c.Cert), s.cfg.ResolvePath(c.Key)
		for _, p := range []string{certPath, keyPath} {
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("%s: certificate %s: %w", s.what, c.Cert, err)
			}
			set.stamp = append(set.stamp, fileStamp{size: st.Size(), mod: st.ModTime()})
		}
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %s: %w", s.what, c.Cert, err)
		}
		set.certs = append(set.certs, pair)
	}
	return set, nil
}

// changed reports whether any file differs from the stamps of set.
func (s *certSource) changed(set *certSet) bool {
	i := 0
	for _, c := range s.files {
		for _, p := range []string{s.cfg.ResolvePath(c.Cert), s.cfg.ResolvePath(c.Key)} {
			st, err := os.Stat(p)
			if err != nil {
				return true
			}
			if i >= len(set.stamp) || st.Size() != set.stamp[i].size || !st.ModTime().Equal(set.stamp[i].mod) {
				return true
			}
			i++
		}
	}
	return false
}

// refresh reloads the certificates when their files changed, at most once per check interval.
func (s *certSource) refresh() {
	now := time.Now()
	next := s.nextCheck.Load()
	if now.UnixNano() < next || !s.nextCheck.CompareAndSwap(next, now.Add(certCheckInterval).UnixNano()) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.current.Load()
	if !s.changed(old) {
		return
	}
	set, err := s.load()
	if err != nil {
		s.log.Warn("certificate files changed but do not load; keeping the previous certificates", "owner", s.what, "error", err)
		return
	}
	s.current.Store(set)
	s.log.Info("certificates reloaded", "owner", s.what, "certificates", len(set.certs))
}

// certificate chooses the certificate for a handshake. With ACME, a server name among its
// domains gets the managed certificate (a CA's TLS-ALPN-01 validation gets the challenge
// certificate). Otherwise, the first configured certificate whose names match the client's
// server name, else the first configured one; without configured certificates, the first
// managed certificate there is, else the handshake fails. It implements
// tls.Config.GetCertificate.
func (s *certSource) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.acme != nil {
		if c, handled, err := s.acme.certificate(hello); handled {
			return c, err
		}
	}
	if len(s.files) == 0 {
		if s.acme != nil {
			if c := s.acme.anyCertificate(); c != nil {
				return c, nil
			}
		}
		return nil, fmt.Errorf("%s: no certificate for server name %q yet", s.what, hello.ServerName)
	}
	s.refresh()
	set := s.current.Load()
	if hello.ServerName != "" {
		for i := range set.certs {
			if leaf := set.certs[i].Leaf; leaf != nil && leaf.VerifyHostname(hello.ServerName) == nil {
				return &set.certs[i], nil
			}
		}
	}
	return &set.certs[0], nil
}

// AdminTLS returns the TLS config of the admin API that cfg describes, or nil when it has none:
// its certificates (reloaded on change) and, with a client CA, verified client certificates.
func AdminTLS(cfg *config.Config, log *slog.Logger) (*tls.Config, error) {
	t := cfg.Admin.TLS
	if t == nil || len(t.Certificates) == 0 {
		return nil, nil
	}
	tc, err := buildTLS(cfg, t, "admin API", log, nil)
	if err != nil {
		return nil, err
	}
	tc.NextProtos = []string{"http/1.1"}
	return tc, nil
}
