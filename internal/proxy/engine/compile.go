package engine

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/netaddr"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
	"github.com/meshgate/meshgate/internal/proxy/filter"
	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
	"github.com/meshgate/meshgate/internal/proxy/policy/fault"
	"github.com/meshgate/meshgate/internal/proxy/policy/mirror"
	"github.com/meshgate/meshgate/internal/proxy/router"
)

// route is a compiled route: its name, timeout and handler chain.
type route struct {
	name       string
	hasTimeout bool
	timeout    time.Duration
	streamIdle time.Duration // 0: none
	maxBody    int64         // 0: the listener's limit only
	handler    proxy.Handler
}

// compile builds a table from cfg, reusing running services whose config is unchanged or changed
// only in its endpoints (those are listed in t.pending, for Apply to update once the table is
// accepted). created lists the services it made, which the caller starts on success or closes on
// failure.
func (e *Engine) compile(cfg *config.Config) (t *Table, created []*service, err error) {
	t = &Table{Config: cfg, listeners: map[string]*listenerTable{}, services: map[string]*service{}}
	for i := range cfg.Services {
		svc := &cfg.Services[i]
		if old := e.services[svc.Name]; old != nil {
			fp := cluster.Fingerprint(svc)
			if old.fingerprint == fp {
				t.services[svc.Name] = old
				continue
			}
			if old.settings == cluster.SettingsFingerprint(svc) {
				// Only the endpoints changed: keep the cluster and transport, and update the
				// endpoints in place once the table is accepted.
				t.services[svc.Name] = old
				t.pending = append(t.pending, endpointUpdate{s: old, svc: svc, fingerprint: fp})
				continue
			}
		}
		s, err := newService(svc, e.log, e.metrics, e.mesh, e.edge)
		if err != nil {
			return nil, created, fmt.Errorf("service %q: %w", svc.Name, err)
		}
		created = append(created, s)
		t.services[svc.Name] = s
	}
	c := &compiler{e: e, services: t.services, budgets: map[budgetKey]*retryBudget{}}
	if t.sec, err = c.compileSecurity(cfg); err != nil {
		return t, created, err
	}
	if err := c.compilePlans(cfg); err != nil {
		return t, created, err
	}
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		lt, err := c.listener(cfg, l)
		if err != nil {
			return t, created, fmt.Errorf("listener %q: %w", l.Name, err)
		}
		t.listeners[l.Name] = lt
	}
	t.budgets = c.budgets
	if t.tracing, err = e.tracingFor(cfg); err != nil {
		return t, created, err
	}
	return t, created, nil
}

// compiler carries what compiling one table needs.
type compiler struct {
	e        *Engine
	services map[string]*service
	budgets  map[budgetKey]*retryBudget // the new table's, by route and parameters
	sec      *security                  // the new table's consumers and authenticators
	plans    *plans                     // the new table's per-consumer limits
}

// budgetKey identifies a retry budget: a route's budget survives a reload while its parameters
// stay the same.
type budgetKey struct {
	route     string
	percent   float64
	minPerSec float64
}

// retryBudget returns the budget for a route's policy, the running one when it is unchanged.
func (c *compiler) retryBudget(route string, p *config.RetryPolicy) *retryBudget {
	k := budgetKey{route, p.Budget.Percent, p.Budget.MinPerSecond}
	if b := c.budgets[k]; b != nil {
		return b
	}
	b := c.e.runningBudget(k)
	if b == nil {
		b = newRetryBudget(p.Budget.Percent, p.Budget.MinPerSecond)
	}
	c.budgets[k] = b
	return b
}

func (c *compiler) listener(cfg *config.Config, l *config.Listener) (*listenerTable, error) {
	lt := &listenerTable{
		name:      l.Name,
		paths:     pathnorm.Options{KeepSlashes: l.Paths.KeepSlashes, AllowEncodedSlash: l.Paths.AllowEncodedSlash},
		maxBody:   l.Limits.MaxBodyBytes,
		maxActive: int64(l.Limits.MaxActiveRequests),
		active:    c.e.activeCounter(l.Name),
	}
	for _, s := range l.TrustedProxies {
		p, err := netaddr.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		lt.trusted = append(lt.trusted, p)
	}
	lt.internal = append(append(lt.internal, c.sec.internal...), l.Security.InternalHeaders...)
	var mine []config.Route
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.Service != "" || len(r.Listeners) > 0 && !contains(r.Listeners, l.Name) {
			continue // routes attached to a mesh service are sidecars' outbound routes
		}
		mine = append(mine, *r)
		cr, err := c.route(r, l)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		lt.routes = append(lt.routes, cr)
	}
	rt, err := router.Compile(mine)
	if err != nil {
		return nil, err
	}
	lt.router = rt
	return lt, nil
}

func (c *compiler) route(r *config.Route, l *config.Listener) (*route, error) {
	cr := &route{name: r.Name}
	if r.Timeout != nil {
		cr.hasTimeout, cr.timeout = true, *r.Timeout
	}
	if r.StreamIdleTimeout != nil {
		cr.streamIdle = *r.StreamIdleTimeout
	}
	cr.maxBody = r.MaxBodyBytes
	mws, err := c.routeSecurity(r, l)
	if err != nil {
		return nil, err
	}
	// Security headers go first, so that the route's own refusals (401, 403, 429, ...) carry
	// them as well as the upstream's answers.
	for i := range r.Filters {
		if sh := r.Filters[i].SecurityHeaders; sh != nil {
			mws = append([]proxy.Middleware{filter.SecurityHeaders(sh)}, mws...)
		}
	}
	var terminal proxy.Handler
	if r.RateLimit != nil {
		lim, err := c.e.limits.Limiter(r.Name, r.RateLimit)
		if err != nil {
			return nil, err
		}
		mws = append(mws, lim.Middleware()) // first: a refused request costs nothing further
	}
	if r.Fault != nil {
		f, err := fault.New(r.Name, r.Fault, c.e.faults)
		if err != nil {
			return nil, err
		}
		mws = append(mws, f)
	}
	for i := range r.Filters {
		f := &r.Filters[i]
		switch {
		case f.RequestHeaders != nil:
			mws = append(mws, filter.RequestHeaders(filter.NewHeaderEdit(f.RequestHeaders)))
		case f.ResponseHeaders != nil:
			mws = append(mws, filter.ResponseHeaders(filter.NewHeaderEdit(f.ResponseHeaders)))
		case f.Rewrite != nil:
			mws = append(mws, filter.Rewrite(f.Rewrite))
		case f.Redirect != nil:
			terminal = filter.Redirect(f.Redirect)
		case f.Respond != nil:
			terminal = filter.FixedResponse(f.Respond)
		}
	}
	if r.Mirror != nil {
		// After the filters, so the shadow sees the request the upstream sees.
		shadow := c.services[r.Mirror.Service]
		if shadow == nil {
			return nil, fmt.Errorf("mirror service %q is not defined", r.Mirror.Service)
		}
		mws = append(mws, mirror.New(r.Name, r.Mirror, shadow, c.e.mirrors, c.e.log.With("route", r.Name)))
	}
	if terminal == nil {
		b, err := newBackends(r.Backends, c.services)
		if err != nil {
			return nil, err
		}
		if r.Retry != nil {
			b.retry = compileRetry(r.Name, r.Retry, c.retryBudget(r.Name, r.Retry), c.e.metrics)
		}
		terminal = b
	}
	cr.handler = proxy.Chain(terminal, mws...)
	return cr, nil
}

// backends splits a route's traffic across services by weight.
type backends struct {
	retry     *retryPolicy // nil: no retries
	services  []*service
	cumWeight []int
	total     int
}

func newBackends(bs []config.Backend, services map[string]*service) (*backends, error) {
	b := &backends{}
	for _, be := range bs {
		s := services[be.Service]
		if s == nil {
			return nil, fmt.Errorf("backend service %q is not defined", be.Service)
		}
		w := 1
		if be.Weight != nil {
			w = *be.Weight
		}
		if w <= 0 {
			continue
		}
		b.total += w
		b.services = append(b.services, s)
		b.cumWeight = append(b.cumWeight, b.total)
	}
	return b, nil
}

// Serve picks a backend by weight and forwards to it. It implements proxy.Handler.
func (b *backends) Serve(x *proxy.Exchange) error {
	switch len(b.services) {
	case 0:
		return proxy.Fail(500, proxy.ReasonNoBackend, fmt.Errorf("engine: route %q has no backend with weight above 0", x.Route))
	case 1:
		return b.send(b.services[0], x)
	}
	n := rand.IntN(b.total)
	for i, c := range b.cumWeight {
		if n < c {
			return b.send(b.services[i], x)
		}
	}
	return b.send(b.services[len(b.services)-1], x)
}

func (b *backends) send(s *service, x *proxy.Exchange) error {
	if b.retry == nil {
		return s.Serve(x)
	}
	return s.serveRetrying(x, b.retry)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
