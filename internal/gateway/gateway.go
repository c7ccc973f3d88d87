// Package gateway runs meshgate's gateway role: it binds the configured listeners, feeds them to
// the engine, and applies new configs from a file (on change or SIGHUP) or the admin API, refusing
// any config that fails and keeping the running one.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/observe/audit"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/observe/record"
	"github.com/meshgate/meshgate/internal/proxy/engine"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/listener"
)

// DrainTimeout bounds how long a removed listener waits for its exchanges before closing them.
const DrainTimeout = 30 * time.Second

// Gateway is one running gateway process.
type Gateway struct {
	log     *slog.Logger
	metrics *metrics.Registry
	engine  *engine.Engine
	acme    *acmeSet // the listeners' automatic certificates

	audit atomic.Pointer[audit.Log] // where config changes are recorded; nil: nowhere
	// listen opens a listener's socket; listenTCP unless SetListen replaced it.
	listen func(l *config.Listener) (net.Listener, error)
	// records keeps the recent requests and live taps of this proxy.
	records *record.Hub

	mu        sync.Mutex // serialises Apply
	listeners map[string]*running
	lastErr   *ReloadError
	draining  sync.WaitGroup
	closed    bool
}

// running is a bound listener and the config it was bound with.
type running struct {
	cfg  config.Listener
	l    *listener.Listener
	h    listener.Handler // what serves its requests
	done chan error
}

// ReloadError describes the last refused config.
type ReloadError struct {
	// Time is when the config was refused.
	Time time.Time `json:"time"`
	// Source is where the config came from.
	Source string `json:"source"`
	// Errors lists every problem found, each naming file:line and the object where known.
	Errors []string `json:"errors"`
}

// New returns a gateway with nothing bound.
func New(log *slog.Logger, m *metrics.Registry) *Gateway {
	g := &Gateway{log: log, metrics: m, engine: engine.New(log, m), acme: newACMESet(log),
		listeners: map[string]*running{}, listen: func(l *config.Listener) (net.Listener, error) { return listenTCP(l.Address) },
		records: record.NewHub(0)}
	host, _ := os.Hostname()
	g.engine.SetRecorder(&engine.Recorder{Hub: g.records, Proxy: "gateway@" + host, Role: "gateway"})
	return g
}

// Records returns the proxy's recent requests, live taps and edge counters.
func (g *Gateway) Records() *record.Hub { return g.records }

// Describe names the proxy in its request records: its name and role, for a sidecar its own
// service and how its listeners map to directions. Call it before the first Apply.
func (g *Gateway) Describe(proxy, role, self string, direction func(listener string) string) {
	g.engine.SetRecorder(&engine.Recorder{Hub: g.records, Proxy: proxy, Role: role, Self: self, Direction: direction})
}

// SetListen replaces how listener sockets are opened: a sidecar serves its listeners from
// connections it accepted and identified itself. Call it before the first Apply.
func (g *Gateway) SetListen(f func(l *config.Listener) (net.Listener, error)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.listen = f
}

// Engine returns the data-plane engine.
func (g *Gateway) Engine() *engine.Engine { return g.engine }

// Metrics returns the metrics registry.
func (g *Gateway) Metrics() *metrics.Registry { return g.metrics }

// LastError returns the last refused config's errors, or nil when the last attempt succeeded.
func (g *Gateway) LastError() *ReloadError {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// Addr returns the bound address of the named listener, or nil.
func (g *Gateway) Addr(name string) net.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.listeners[name]; r != nil {
		return r.l.Addr()
	}
	return nil
}

// SetAudit makes the gateway record every later config change, applied or refused, in l.
func (g *Gateway) SetAudit(l *audit.Log) { g.audit.Store(l) }

// LoadFile reads, validates and applies the config file at path.
func (g *Gateway) LoadFile(path string) (*engine.Table, error) {
	return g.LoadFileBy("", path)
}

// LoadFileBy is LoadFile on behalf of actor (for the audit log: "file change", "SIGHUP", ...).
func (g *Gateway) LoadFileBy(actor, path string) (*engine.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, g.audited(actor, path, nil, g.refuse(path, fmt.Errorf("config: %w", err)))
	}
	data, err := io.ReadAll(io.LimitReader(f, config.MaxFileBytes+1))
	f.Close()
	if err != nil {
		return nil, g.audited(actor, path, nil, g.refuse(path, fmt.Errorf("config: read %s: %w", path, err)))
	}
	return g.LoadBytesBy(actor, path, data)
}

// LoadBytes validates and applies a config given as YAML; source labels it in errors.
func (g *Gateway) LoadBytes(source string, data []byte) (*engine.Table, error) {
	return g.LoadBytesBy("", source, data)
}

// LoadBytesBy is LoadBytes on behalf of actor, recorded in the audit log when there is one.
func (g *Gateway) LoadBytesBy(actor, source string, data []byte) (*engine.Table, error) {
	old := uint64(0)
	if t := g.engine.Table(); t != nil {
		old = t.Version
	}
	cfg, err := config.LoadBytes(source, data)
	if err != nil {
		return nil, g.audited(actor, source, data, g.refuse(source, err), old)
	}
	t, err := g.Apply(cfg)
	if err != nil {
		return nil, g.audited(actor, source, data, err, old)
	}
	if a := g.audit.Load(); a != nil {
		g.record(a, audit.Entry{Time: time.Now(), Actor: actorOr(actor), Source: source, Result: "applied",
			OldVersion: old, NewVersion: t.Version, SHA256: audit.Digest(data)})
	}
	return t, nil
}

// audited records a refused change and returns err. old is the running version, when known.
func (g *Gateway) audited(actor, source string, data []byte, err error, old ...uint64) error {
	a := g.audit.Load()
	if a == nil {
		return err
	}
	e := audit.Entry{Time: time.Now(), Actor: actorOr(actor), Source: source, Result: "refused"}
	if len(old) > 0 {
		e.OldVersion = old[0]
	} else if t := g.engine.Table(); t != nil {
		e.OldVersion = t.Version
	}
	if data != nil {
		e.SHA256 = audit.Digest(data)
	}
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, le := range list {
			e.Errors = append(e.Errors, le.Error())
		}
	} else {
		e.Errors = []string{err.Error()}
	}
	g.record(a, e)
	return err
}

// record writes e, logging when the audit log cannot be written.
func (g *Gateway) record(a *audit.Log, e audit.Entry) {
	if err := a.Record(e); err != nil {
		g.log.Error("cannot write the audit log", "error", err)
	}
}

// actorOr names an unnamed actor.
func actorOr(actor string) string {
	if actor == "" {
		return "api"
	}
	return actor
}

func (g *Gateway) refuse(source string, err error) error {
	g.metrics.Reloads.WithLabelValues("failure").Inc()
	re := &ReloadError{Time: time.Now(), Source: source}
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			re.Errors = append(re.Errors, e.Error())
		}
	} else {
		re.Errors = []string{err.Error()}
	}
	g.mu.Lock()
	g.lastErr = re
	g.mu.Unlock()
	g.log.Error("config refused; the running config keeps serving", "source", source, "errors", re.Errors)
	return err
}

// Apply makes cfg (validated) the running config: it binds new listeners, compiles and swaps the
// engine table, updates kept listeners and drains removed ones. If any step fails before the swap,
// nothing changes.
func (g *Gateway) Apply(cfg *config.Config) (*engine.Table, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("gateway: shut down")
	}
	t, err := g.apply(cfg)
	if err != nil {
		g.mu.Unlock()
		_ = g.refuse(cfg.Source.File, err)
		g.mu.Lock()
		return nil, err
	}
	g.lastErr = nil
	g.metrics.Reloads.WithLabelValues("success").Inc()
	g.log.Info("config applied", "version", t.Version, "source", cfg.Source.File,
		"listeners", len(cfg.Listeners), "routes", len(cfg.Routes), "services", len(cfg.Services))
	return t, nil
}

func (g *Gateway) apply(cfg *config.Config) (*engine.Table, error) {
	g.acme.begin()
	committed := false
	defer func() {
		if !committed {
			g.acme.abort()
		}
	}()
	settings := make(map[string]*listener.Settings, len(cfg.Listeners))
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		tc, err := serverTLS(cfg, l, g.log, g.acme)
		if err != nil {
			return nil, err
		}
		settings[l.Name] = listenerSettings(l, tc)
	}
	// Decide which sockets stay, which go and which are new.
	keep := map[string]*running{}
	var remove []*running
	for name, r := range g.listeners {
		if nl := findListener(cfg, name); nl != nil && nl.Address == r.cfg.Address && nl.Protocol == r.cfg.Protocol {
			keep[name] = r
		} else {
			remove = append(remove, r)
		}
	}
	// A new listener on an address a removed one holds needs that socket first.
	var needFree []*running
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if keep[l.Name] != nil {
			continue
		}
		for _, r := range remove {
			if r.cfg.Address == l.Address {
				needFree = append(needFree, r)
			}
		}
	}
	bound := map[string]net.Listener{}
	fail := func(err error) (*engine.Table, error) {
		for _, ln := range bound {
			_ = ln.Close()
		}
		return nil, err
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if keep[l.Name] != nil || holds(needFree, l.Address) {
			continue
		}
		ln, err := g.listen(l)
		if err != nil {
			return fail(fmt.Errorf("listener %q: %w", l.Name, err))
		}
		bound[l.Name] = ln
	}
	// Listeners about to be removed serve their last requests as they were configured, from
	// before the swap on (the new table no longer knows their names).
	if prev := g.engine.Table(); prev != nil {
		for _, r := range remove {
			r.l.SetHandler(g.engine.Pin(prev))
		}
	}
	t, err := g.engine.Apply(cfg)
	if err != nil {
		for _, r := range remove {
			r.l.SetHandler(r.h)
		}
		return fail(err)
	}
	// The new table is live. Retire removed listeners, then bind what had to wait for them.
	for _, r := range remove {
		g.retire(r)
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if keep[l.Name] != nil || bound[l.Name] != nil {
			continue
		}
		ln, err := g.listen(l)
		if err != nil {
			// The address was just freed by this process; failing here means another process took it.
			g.log.Error("listener could not be re-bound", "listener", l.Name, "address", l.Address, "error", err)
			continue
		}
		bound[l.Name] = ln
	}
	g.acme.commit(func(name string) string {
		if ln := bound[name]; ln != nil {
			return ln.Addr().String()
		}
		if r := keep[name]; r != nil {
			return r.l.Addr().String()
		}
		return ""
	})
	committed = true
	next := map[string]*running{}
	for name, r := range keep {
		r.cfg = *findListener(cfg, name)
		r.l.Update(settings[name])
		next[name] = r
	}
	for name, ln := range bound {
		lc := *findListener(cfg, name)
		next[name] = g.start(lc, ln, settings[name])
	}
	g.listeners = next
	return t, nil
}

func (g *Gateway) start(lc config.Listener, ln net.Listener, s *listener.Settings) *running {
	gauge := g.metrics.DownstreamConnections.WithLabelValues(lc.Name)
	var h listener.Handler = g.engine
	if lc.Protocol == config.ProtocolHTTP {
		h = acmeHTTP{e: g.engine} // answers ACME HTTP-01 challenges in progress, if any
	}
	l := listener.New(ln, s, listener.Options{
		Name: lc.Name, Protocol: lc.Protocol, Handler: h, Logger: g.log.With("listener", lc.Name),
		OnConn: func(d int) { gauge.Add(float64(d)) },
		OnShed: g.metrics.DownstreamShed.WithLabelValues(lc.Name).Inc,
	})
	r := &running{cfg: lc, l: l, h: h, done: make(chan error, 1)}
	go func() { r.done <- l.Serve() }()
	g.log.Info("listening", "listener", lc.Name, "address", ln.Addr().String(), "protocol", lc.Protocol)
	return r
}

// retire closes r's socket now, so its address can be bound again at once, and drains its
// connections in the background.
func (g *Gateway) retire(r *running) {
	r.l.CloseSocket()
	g.draining.Add(1)
	go func() {
		defer g.draining.Done()
		ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
		defer cancel()
		_ = r.l.Shutdown(ctx)
	}()
}

// Shutdown stops accepting on every listener, lets exchanges finish until ctx ends, and stops the
// engine.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	ls := g.listeners
	g.listeners = map[string]*running{}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = r.l.Shutdown(ctx)
		}()
	}
	wg.Wait()
	g.draining.Wait()
	g.acme.close()
	g.engine.Close()
	return ctx.Err()
}

func findListener(cfg *config.Config, name string) *config.Listener {
	for i := range cfg.Listeners {
		if cfg.Listeners[i].Name == name {
			return &cfg.Listeners[i]
		}
	}
	return nil
}

func holds(rs []*running, addr string) bool {
	for _, r := range rs {
		if r.cfg.Address == addr {
			return true
		}
	}
	return false
}

func listenerSettings(l *config.Listener, tc *tls.Config) *listener.Settings {
	return &listener.Settings{
		ReadHeaderTimeout: l.Timeouts.ReadHeader,
		IdleTimeout:       l.Timeouts.Idle,
		RequestTimeout:    l.Timeouts.Request,
		Limits: http1.Limits{MaxHeaderBytes: l.Limits.MaxHeaderBytes, MaxHeaderCount: l.Limits.MaxHeaderCount,
			AllowGetBody: l.Limits.AllowGetBody},
		MaxBodyBytes:         l.Limits.MaxBodyBytes,
		MaxConnections:       l.Limits.MaxConnections,
		MaxConcurrentStreams: l.Limits.MaxConcurrentStreams,
		TLS:                  tc,
	}
}

// listenTCP binds a listener socket. Accepted connections get no TCP keep-alive probes (Go's
// default costs several setsockopt calls per connection): idle and request timeouts bound every
// downstream connection instead, as nginx does.
func listenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}
