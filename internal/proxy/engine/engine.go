// Package engine compiles a config snapshot into an immutable runtime table (listeners → routers →
// route handler chains → services) and serves exchanges against the table that is current when
// each request starts. Apply swaps tables atomically: requests in flight finish on the old one, and
// services whose config did not change keep their connection pools and health state. A service
// whose config changed only in its endpoints keeps them too: its endpoint set is updated in place.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/observe/accesslog"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/policy/auth"
	"github.com/meshgate/meshgate/internal/proxy/policy/fault"
	"github.com/meshgate/meshgate/internal/proxy/policy/mirror"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
	"github.com/meshgate/meshgate/internal/security/jwtauth"
)

// Engine is the data-plane engine of one meshgate process.
type Engine struct {
	log     *slog.Logger
	metrics *metrics.Registry

	table     atomic.Pointer[Table]
	accessLog atomic.Pointer[accesslog.Logger]

	mu       sync.Mutex // serialises Apply
	version  uint64
	services map[string]*service      // by name, as of the current table
	active   map[string]*atomic.Int64 // active requests by listener name; outlives reloads
	limits   *ratelimit.Store         // rate-limit state by route; outlives reloads
	faults   *fault.Metrics
	mirrors  *mirror.Metrics
	auth     *auth.Metrics
	// verifiers are the JWT verifiers of the current table; they outlive reloads while their
	// authenticator is unchanged.
	verifiers map[verifierKey]*jwtauth.Verifier
	extAuthz  []*auth.ExtAuthz
	// mesh dials mesh peers with the proxy's workload identity; nil for a gateway from a file.
	mesh MeshDialer
	// recorder receives a record of every request (tap, explain, edge counters); nil: none. It
	// also says which listeners are the edge.
	recorder *Recorder
	// edge signs the edge context at the gateway and verifies it at sidecars; nil: none.
	edge *edgectx.Key
	// tracers counts replaced tracers still flushing; Close waits for them.
	tracers sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

// New returns an engine with no table; every request gets 404 no_route until Apply.
func New(log *slog.Logger, m *metrics.Registry) *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	limits := ratelimit.NewStore(ratelimit.Options{
		Logger:     log.With("component", "ratelimit"),
		OnDecision: func(route, decision string) { m.RateLimitDecisions.WithLabelValues(route, decision).Inc() },
	})
	return &Engine{log: log, metrics: m, services: map[string]*service{}, active: map[string]*atomic.Int64{},
		limits: limits, faults: fault.NewMetrics(m.Prom), mirrors: mirror.NewMetrics(m.Prom), auth: auth.NewMetrics(m.Prom),
		verifiers: map[verifierKey]*jwtauth.Verifier{}, ctx: ctx, cancel: cancel}
}

// Table returns the table in force.
func (e *Engine) Table() *Table { return e.table.Load() }

// Apply compiles cfg (already defaulted and validated) beside the running table and swaps it in.
// On error nothing changes. The access log is reopened when its path changed.
func (e *Engine) Apply(cfg *config.Config) (*Table, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.table.Load()
	t, created, err := e.compile(cfg)
	if t != nil {
		t.edge, t.rec, t.reg = e.edge, e.recorder, e.metrics
	}
	if err != nil {
		for _, s := range created {
			s.close()
		}
		if t != nil && t.sec != nil {
			for _, v := range t.sec.newVerifiers {
				v.Close()
			}
		}
		return nil, err
	}
	if old == nil || old.Config.AccessLog.Path != cfg.AccessLog.Path {
		al, err := accesslog.Open(cfg.AccessLog.Path)
		if err != nil {
			e.discardTracing(t)
			for _, s := range created {
				s.close()
			}
			for _, v := range t.sec.newVerifiers {
				v.Close()
			}
			return nil, err
		}
		if prev := e.accessLog.Swap(al); prev != nil {
			_ = prev.Close()
		}
	}
	// Past the last failure: services whose endpoints alone changed take their new endpoints now,
	// in place, keeping their health state and pooled connections.
	for _, u := range t.pending {
		if err := u.s.updateEndpoints(u.svc, u.fingerprint); err != nil {
			e.log.Error("cannot update the service's endpoints; keeping the previous ones", "service", u.s.name, "error", err)
		}
	}
	t.pending = nil
	e.version++
	t.Version = e.version
	t.Loaded = time.Now()
	for _, s := range created {
		s.start(e.ctx)
	}
	for _, v := range t.sec.newVerifiers {
		_ = v.Start(e.ctx) // fails only when started twice; a failed first fetch is retried
	}
	e.table.Store(t)
	e.retireSecurity(t.sec)
	e.retireTracing(old, t)
	// Services the new table no longer uses (removed or changed) stop their health checks and close
	// their idle connections; exchanges still running on them finish normally.
	for name, s := range e.services {
		if next := t.services[name]; next != s {
			s.close()
			s.forgetEndpoints(next)
		}
	}
	e.services = t.services
	routes := make(map[string]bool, len(cfg.Routes)+2*len(cfg.Plans))
	for i := range cfg.Routes {
		routes[cfg.Routes[i].Name] = true
	}
	for i := range cfg.Plans {
		routes["plan:"+cfg.Plans[i].Name] = true
		routes["quota:"+cfg.Plans[i].Name] = true
	}
	e.limits.Retain(routes)
	e.metrics.ConfigVersion.Set(float64(t.Version))
	e.metrics.ConfigLastReload.Set(float64(t.Loaded.Unix()))
	return t, nil
}

// retireSecurity closes the verifiers and authorization clients the previous table used and
// the new one (sec) does not. Apply holds e.mu.
func (e *Engine) retireSecurity(sec *security) {
	for k, v := range e.verifiers {
		if sec.verifiers[k] != v {
			v.Close()
		}
	}
	e.verifiers = sec.verifiers
	for _, ea := range e.extAuthz {
		ea.Close()
	}
	e.extAuthz = sec.extAuthz
}

// runningVerifier returns the verifier the running table keeps under k, or nil.
func (e *Engine) runningVerifier(k verifierKey) *jwtauth.Verifier { return e.verifiers[k] }

// activeCounter returns the active-request counter of the named listener. Apply holds e.mu.
func (e *Engine) activeCounter(listener string) *atomic.Int64 {
	c := e.active[listener]
	if c == nil {
		c = new(atomic.Int64)
		e.active[listener] = c
	}
	return c
}

// runningBudget returns the retry budget the running table keeps under k, or nil.
func (e *Engine) runningBudget(k budgetKey) *retryBudget {
	if t := e.table.Load(); t != nil {
		return t.budgets[k]
	}
	return nil
}

// Close stops every service's health checks and pools and flushes the access log.
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cancel()
	for _, s := range e.services {
		s.close()
	}
	e.services = map[string]*service{}
	e.retireSecurity(&security{})
	e.limits.Close()
	if al := e.accessLog.Swap(nil); al != nil {
		_ = al.Close()
	}
	e.retireTracing(e.table.Load(), nil)
	e.tracers.Wait()
}

// ServeExchange serves one exchange against the current table. It implements listener.Handler.
func (e *Engine) ServeExchange(x *proxy.Exchange) {
	t := e.table.Load()
	var err error
	var h *hop
	if t == nil {
		err = proxy.Fail(404, proxy.ReasonNoRoute, fmt.Errorf("engine: no config loaded"))
	} else {
		if t.tracing != nil {
			h = t.tracing.begin(x)
		}
		err = t.serve(x)
	}
	if err != nil {
		_ = proxy.RespondError(x, err)
	}
	e.observe(x)
	if h != nil {
		h.end(x)
	}
}

// Answer responds to x with a response meshgate generates outside any route (an ACME HTTP-01
// challenge answer), and records it like any other.
func (e *Engine) Answer(x *proxy.Exchange, status int, reason, contentType, body string) {
	_ = proxy.Respond(x, status, reason, contentType, body)
	e.observe(x)
}

// RejectExchange answers a request the transport could not parse, and records it like any other.
func (e *Engine) RejectExchange(x *proxy.Exchange, err *proxy.Error) {
	_ = proxy.RespondError(x, err)
	e.observe(x)
}

func (e *Engine) observe(x *proxy.Exchange) {
	d := time.Since(x.Start)
	status := x.Status
	if status == 0 {
		status = 499 // the client went away before any response
	}
	code := metrics.StatusCode(status)
	e.metrics.Requests.WithLabelValues(x.Listener, x.Route, x.Service, code, x.Reason).Inc()
	e.metrics.RequestDuration.WithLabelValues(x.Route, x.Service).Observe(d.Seconds())
	if !x.UpstreamStart.IsZero() && x.UpstreamDuration > 0 {
		e.metrics.UpstreamDuration.WithLabelValues(x.Service).Observe(x.UpstreamDuration.Seconds())
	}
	if id := x.Identity; id != nil && id.Consumer != "" {
		e.metrics.ConsumerRequests.WithLabelValues(id.Consumer, x.Service, x.Route, code).Inc()
	} else if x.EdgeConsumer != "" {
		e.metrics.ConsumerRequests.WithLabelValues(x.EdgeConsumer, x.Service, x.Route, code).Inc()
	}
	if r := e.recorder; r != nil {
		r.record(x, status, d)
	}
	al := e.accessLog.Load()
	if al == nil {
		return
	}
	ent := accesslog.Entry{
		RequestID: x.ID, Listener: x.Listener, Route: x.Route, Service: x.Service, Endpoint: x.Endpoint,
		Method: x.Req.Method, Host: x.Req.Host, Path: x.Req.Path, Proto: x.Req.Proto.String(),
		Status: status, Reason: x.Reason, Duration: d, UpstreamDuration: x.UpstreamDuration,
		BytesIn: x.BytesIn, BytesOut: x.BytesOut, Attempts: x.Attempts, Authz: x.Decision,
	}
	if id := x.Identity; id != nil {
		ent.Consumer = id.Consumer
	}
	if x.ClientIP.IsValid() {
		ent.ClientIP = x.ClientIP.String()
	}
	if x.Err != nil {
		ent.Error = x.Err.Error()
	}
	al.Log(&ent)
}

// Pinned serves exchanges with one table rather than the current one: the last requests on the
// connections of a listener a reload removed or renamed are served as the listener was
// configured (the new table no longer knows its name). It implements listener.Handler.
type Pinned struct {
	e *Engine
	t *Table
}

// Pin returns a handler that serves with t.
func (e *Engine) Pin(t *Table) *Pinned { return &Pinned{e: e, t: t} }

// ServeExchange serves one exchange against the pinned table.
func (p *Pinned) ServeExchange(x *proxy.Exchange) {
	if p.t == nil {
		p.e.ServeExchange(x)
		return
	}
	var h *hop
	if p.t.tracing != nil {
		h = p.t.tracing.begin(x)
	}
	if err := p.t.serve(x); err != nil {
		_ = proxy.RespondError(x, err)
	}
	p.e.observe(x)
	if h != nil {
		h.end(x)
	}
}

// RejectExchange answers a request the transport could not parse.
func (p *Pinned) RejectExchange(x *proxy.Exchange, err *proxy.Error) { p.e.RejectExchange(x, err) }
