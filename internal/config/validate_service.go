package config

import "strings"

// serviceList checks every service and their names.
func (v *validator) serviceList() {
	v.services = make(map[string]bool)
	v.meshServices = make(map[string]string)
	names := make(map[string]string)
	for i := range v.c.Services {
		svc := &v.c.Services[i]
		s := v.object(pathIndex("services", i), svc.Name)
		uniqueName(s, svc.Name, names)
		if svc.Name != "" {
			v.services[svc.Name] = true
		}
		v.service(s, svc)
	}
}

// service checks one service.
func (v *validator) service(s scope, svc *Service) {
	checkOneOf(s.key("protocol"), svc.Protocol, UpstreamHTTP1, UpstreamHTTP2, UpstreamGRPC)

	if len(svc.Endpoints) == 0 && svc.Discovery == nil {
		s.key("endpoints").errorf("at least one endpoint is required (or discovery, to take them from the mesh registry)")
	}
	v.discovery(s, svc)
	meshBlocks(s, svc)
	if svc.Authz != nil {
		v.authzPolicy(s.key("authz"), svc.Authz, true)
	}
	addrs := make(map[string]string)
	for i, e := range svc.Endpoints {
		es := s.key("endpoints").index(i)
		v.endpoint(es, e)
		if first, dup := addrs[strings.ToLower(e.Address)]; dup && e.Address != "" {
			es.key("address").errorf("%q is already listed as %s", e.Address, v.where(first))
		} else {
			addrs[strings.ToLower(e.Address)] = es.path
		}
	}

	if svc.CircuitBreaker != nil {
		checkCircuitBreaker(s.key("circuitBreaker"), svc.CircuitBreaker)
	}
	if svc.OutlierDetection != nil {
		checkOutlier(s.key("outlierDetection"), svc.OutlierDetection)
	}
	if svc.AdaptiveConcurrency != nil {
		checkAdaptive(s.key("adaptiveConcurrency"), svc.AdaptiveConcurrency)
	}

	lb := s.key("loadBalancer")
	checkOneOf(lb.key("policy"), svc.LoadBalancer.Policy, LBRoundRobin, LBLeastRequest, LBRingHash, LBMaglev, LBRandom)
	hashing := svc.LoadBalancer.Policy == LBRingHash || svc.LoadBalancer.Policy == LBMaglev
	switch h := svc.LoadBalancer.Hash; {
	case hashing && h == nil:
		lb.key("hash").errorf("required for policy %q", svc.LoadBalancer.Policy)
	case !hashing && h != nil:
		lb.key("hash").errorf(`only allowed for policies "ring_hash" and "maglev"`)
	case h != nil:
		hs := lb.key("hash")
		exactlyOne(hs, []string{"header", "cookie", "sourceIP"}, h.Header != "", h.Cookie != "", h.SourceIP)
		if h.Header != "" && !isToken(h.Header) {
			hs.key("header").errorf("%q is not a valid header name", h.Header)
		}
		if h.Cookie != "" && !isToken(h.Cookie) {
			hs.key("cookie").errorf("%q is not a valid cookie name", h.Cookie)
		}
	}

	if svc.HealthCheck != nil {
		checkHealthCheck(s.key("healthCheck"), svc.HealthCheck)
	}

	p := s.key("pool")
	checkNotNegative(p.key("maxIdlePerEndpoint"), svc.Pool.MaxIdlePerEndpoint)
	checkNotNegative(p.key("maxConnsPerEndpoint"), svc.Pool.MaxConnsPerEndpoint)
	checkNotNegative(p.key("idleTimeout"), svc.Pool.IdleTimeout)
	checkNotNegative(p.key("connectTimeout"), svc.Pool.ConnectTimeout)
}

// endpoint checks one endpoint of a service.
func (v *validator) endpoint(s scope, e Endpoint) {
	as := s.key("address")
	if e.Address == "" {
		as.errorf("required")
	} else {
		checkEndpointAddress(as, e.Address)
	}
	if e.Weight < 1 {
		s.key("weight").errorf("must be at least 1")
	}
}

// checkHealthCheck checks the active health check of a service.
func checkHealthCheck(s scope, h *HealthCheck) {
	exactlyOne(s, []string{"http", "tcp"}, h.HTTP != nil, h.TCP != nil)
	checkNotNegative(s.key("interval"), h.Interval)
	checkNotNegative(s.key("timeout"), h.Timeout)
	if h.Timeout >= h.Interval && h.Interval >= 0 {
		// Point at whichever of the two the file sets; the other may be a default.
		if ts := s.key("timeout"); s.v.inFile(ts.path) || !s.v.inFile(s.key("interval").path) {
			ts.errorf("%v must be less than the interval (%v)", h.Timeout, h.Interval)
		} else {
			s.key("interval").errorf("%v must be greater than the timeout (%v)", h.Interval, h.Timeout)
		}
	}
	if h.UnhealthyThreshold < 1 {
		s.key("unhealthyThreshold").errorf("must be at least 1")
	}
	if h.HealthyThreshold < 1 {
		s.key("healthyThreshold").errorf("must be at least 1")
	}
	if hh := h.HTTP; hh != nil {
		hs := s.key("http")
		if !strings.HasPrefix(hh.Path, "/") {
			hs.key("path").errorf(`%q must start with "/"`, hh.Path)
		}
		if hh.Host != "" {
			checkHostPort(hs.key("host"), hh.Host)
		}
		for i, st := range hh.ExpectedStatuses {
			if st < 100 || st > 599 {
				hs.key("expectedStatuses").index(i).errorf("%d is not a status in 100..599", st)
			}
		}
	}
}
