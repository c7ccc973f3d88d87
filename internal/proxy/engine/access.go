package engine

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
	"github.com/meshgate/meshgate/internal/security/authz"
)

// errAuthzDenied is the cause of a 403 from an authorization policy.
var errAuthzDenied = errors.New("engine: refused by the route's authorization policy")

// authzMiddleware decides each request with p: a refusal is answered 403 with reason
// "authz_denied"; the rule that decided goes to the exchange (access log) and the metrics.
func authzMiddleware(route string, p *authz.Policy, decisions *prometheus.CounterVec) proxy.Middleware {
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			in := authz.Input{Method: x.Req.Method, Path: x.Req.Path, Host: x.Req.Host, Header: x.Req.Header,
				SourceIP: x.ClientIP, Identity: x.Identity, PeerID: x.PeerID}
			d := p.Decide(&in)
			x.Decision = d.Rule
			if !d.Allow {
				decisions.WithLabelValues(route, d.Rule, "deny").Inc()
				return proxy.Fail(403, proxy.ReasonAuthzDenied, fmt.Errorf("%w (rule %q)", errAuthzDenied, d.Rule))
			}
			decisions.WithLabelValues(route, d.Rule, "allow").Inc()
			return next.Serve(x)
		})
	}
}

// plans are the compiled per-consumer limits of a table's plans.
type plans struct {
	limits map[string]*ratelimit.Limiter
	quotas map[string]*ratelimit.Quota
}

// compilePlans compiles cfg's plans; their limiters and quotas outlive reloads in the engine's
// rate-limit store under "plan:" and "quota:" names.
func (c *compiler) compilePlans(cfg *config.Config) error {
	c.plans = &plans{limits: map[string]*ratelimit.Limiter{}, quotas: map[string]*ratelimit.Quota{}}
	for i := range cfg.Plans {
		p := &cfg.Plans[i]
		if p.RateLimit != nil {
			l := *p.RateLimit
			l.Key = config.RateLimitKey{Consumer: true}
			lim, err := c.e.limits.Limiter("plan:"+p.Name, &config.RateLimitPolicy{Local: &l})
			if err != nil {
				return fmt.Errorf("plan %q: %w", p.Name, err)
			}
			c.plans.limits[p.Name] = lim
		}
		if p.Quota != nil {
			q, err := c.e.limits.Quota(p.Name, p.Quota)
			if err != nil {
				return fmt.Errorf("plan %q: %w", p.Name, err)
			}
			c.plans.quotas[p.Name] = q
		}
	}
	return nil
}

// planMiddleware returns the middleware that meters each authenticated consumer by its plan:
// the plan's rate limit, then its quota. It is nil when no plan limits anything.
func (c *compiler) planMiddleware() proxy.Middleware {
	ps := c.plans
	if ps == nil || len(ps.limits)+len(ps.quotas) == 0 {
		return nil
	}
	return func(next proxy.Handler) proxy.Handler {
		var quota proxy.Handler = proxy.HandlerFunc(func(x *proxy.Exchange) error {
			if q := ps.quotas[x.Identity.Plan]; q != nil {
				return q.Serve(x, next)
			}
			return next.Serve(x)
		})
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			if x.Identity == nil || x.Identity.Plan == "" {
				return next.Serve(x)
			}
			if l := ps.limits[x.Identity.Plan]; l != nil {
				return l.Serve(x, quota)
			}
			return quota.Serve(x)
		})
	}
}
