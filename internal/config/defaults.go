package config

import "time"

// ApplyDefaults fills every field that is left unset with the default stated in its
// documentation. It only fills zero values, so applying it twice changes nothing.
func ApplyDefaults(c *Config) {
	if c == nil {
		return
	}
	setDefault(&c.Admin.Address, "127.0.0.1:9901")
	setDefault(&c.AccessLog.Path, "stdout")
	for i := range c.Listeners {
		listenerDefaults(&c.Listeners[i])
	}
	for i := range c.Routes {
		routeDefaults(&c.Routes[i])
	}
	for i := range c.Services {
		serviceDefaults(&c.Services[i])
	}
	securityDefaults(c)
	telemetryDefaults(c.Telemetry)
}

// setDefault sets *p to v when *p is the zero value.
func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// listenerDefaults fills the defaults of one listener.
func listenerDefaults(l *Listener) {
	setDefault(&l.Protocol, ProtocolHTTP)
	if l.TLS != nil {
		setDefault(&l.TLS.MinVersion, "1.2")
		if l.TLS.ClientCA != "" {
			setDefault(&l.TLS.ClientAuth, defaultClientAuthWithCA)
		}
		if l.TLS.ACME != nil {
			acmeDefaults(l.TLS.ACME)
		}
	}
	setDefault(&l.Timeouts.ReadHeader, 10*time.Second)
	setDefault(&l.Timeouts.Idle, 60*time.Second)
	setDefault(&l.Timeouts.Request, 5*time.Minute)
	setDefault(&l.Limits.MaxHeaderBytes, 65536)
	setDefault(&l.Limits.MaxHeaderCount, 100)
	setDefault(&l.Limits.MaxBodyBytes, 10<<20)
	setDefault(&l.Limits.MaxConnections, 10000)
	setDefault(&l.Limits.MaxConcurrentStreams, 250)
}

// routeDefaults fills the defaults of one route: a match-all entry, prefix "/" for matches
// without a path, weight 1 for backends, and the defaults of its filters.
func routeDefaults(r *Route) {
	if len(r.Match) == 0 {
		r.Match = []RouteMatch{{}}
	}
	for i := range r.Match {
		if r.Match[i].Path == nil {
			r.Match[i].Path = &PathMatch{Prefix: "/"}
		}
	}
	for i := range r.Filters {
		filterDefaults(&r.Filters[i])
	}
	for i := range r.Backends {
		if r.Backends[i].Weight == nil {
			one := 1
			r.Backends[i].Weight = &one
		}
	}
	if r.Retry != nil {
		retryDefaults(r.Retry)
	}
	if r.RateLimit != nil {
		defaultRateLimit(r.RateLimit)
	}
	if r.Fault != nil {
		faultDefaults(r.Fault)
	}
	if r.Mirror != nil {
		mirrorDefaults(r.Mirror)
	}
	routeSecurityDefaults(r)
}

// retryDefaults fills the defaults of a retry policy.
func retryDefaults(p *RetryPolicy) {
	setDefault(&p.Attempts, 2)
	if len(p.On) == 0 {
		p.On = []string{RetryOnConnectFailure, RetryOnRefusedStream, RetryOnReset, RetryOnGatewayError}
	}
	setDefault(&p.Backoff.Base, 25*time.Millisecond)
	setDefault(&p.Backoff.Max, 250*time.Millisecond)
	setDefault(&p.Budget.Percent, 20)
	setDefault(&p.Budget.MinPerSecond, 3)
	setDefault(&p.BufferBytes, 64<<10)
}

// filterDefaults fills the defaults of one filter.
func filterDefaults(f *Filter) {
	if f.Redirect != nil {
		setDefault(&f.Redirect.Status, 302)
	}
	if f.SecurityHeaders != nil {
		securityHeadersDefaults(f.SecurityHeaders)
	}
	if f.Respond != nil {
		setDefault(&f.Respond.Status, 200)
		if f.Respond.Body != "" {
			setDefault(&f.Respond.ContentType, "text/plain; charset=utf-8")
		}
	}
}

// serviceDefaults fills the defaults of one service.
func serviceDefaults(s *Service) {
	meshDefaults(s)
	if s.CircuitBreaker != nil {
		circuitBreakerDefaults(s.CircuitBreaker)
	}
	if s.OutlierDetection != nil {
		outlierDefaults(s.OutlierDetection)
	}
	if s.AdaptiveConcurrency != nil {
		adaptiveDefaults(s.AdaptiveConcurrency)
	}
	setDefault(&s.Protocol, UpstreamHTTP1)
	for i := range s.Endpoints {
		setDefault(&s.Endpoints[i].Weight, 1)
	}
	setDefault(&s.LoadBalancer.Policy, LBRoundRobin)
	if h := s.HealthCheck; h != nil {
		setDefault(&h.Interval, 5*time.Second)
		setDefault(&h.Timeout, 2*time.Second)
		setDefault(&h.UnhealthyThreshold, 3)
		setDefault(&h.HealthyThreshold, 2)
		if h.HTTP != nil {
			setDefault(&h.HTTP.Path, "/")
		}
	}
	setDefault(&s.Pool.MaxIdlePerEndpoint, 256)
	setDefault(&s.Pool.MaxConnsPerEndpoint, 1024)
	setDefault(&s.Pool.IdleTimeout, 90*time.Second)
	setDefault(&s.Pool.ConnectTimeout, 5*time.Second)
}

// ApplyServiceDefaults fills the defaults of one service, for services made outside a config
// file (such as the control plane's services for registered workloads).
func ApplyServiceDefaults(s *Service) { serviceDefaults(s) }
