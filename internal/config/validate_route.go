package config

import (
	"strings"

	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
)

// routeList checks every route and their names. It runs after listenerList and serviceList,
// whose names routes refer to.
func (v *validator) routeList() {
	names := make(map[string]string)
	for i := range v.c.Routes {
		r := &v.c.Routes[i]
		s := v.object(pathIndex("routes", i), r.Name)
		uniqueName(s, r.Name, names)
		if strings.HasPrefix(r.Name, "plan:") || strings.HasPrefix(r.Name, "quota:") {
			s.key("name").errorf(`%q: names starting with "plan:" or "quota:" are reserved for plans' limits`, r.Name)
		}
		v.route(s, r)
	}
}

// route checks one route.
func (v *validator) route(s scope, r *Route) {
	v.routeParent(s, r)
	seen := make(map[string]bool)
	for i, name := range r.Listeners {
		ls := s.key("listeners").index(i)
		switch {
		case !v.listeners[name]:
			ls.errorf("listener %q is not defined", name)
		case seen[name]:
			ls.errorf("listener %q is listed twice", name)
		}
		seen[name] = true
	}

	hosts := make(map[string]bool)
	for i, h := range r.Hosts {
		hs := s.key("hosts").index(i)
		checkRouteHost(hs, h)
		if hosts[strings.ToLower(h)] {
			hs.errorf("host %q is listed twice", h)
		}
		hosts[strings.ToLower(h)] = true
	}

	if len(r.Match) == 0 {
		s.key("match").errorf("at least one match is required")
	}
	for i := range r.Match {
		checkRouteMatch(s.key("match").index(i), &r.Match[i])
	}

	answered := "" // path of the filter that answers the request itself
	for i := range r.Filters {
		fs := s.key("filters").index(i)
		checkFilter(fs, &r.Filters[i], r)
		if r.Filters[i].Redirect != nil || r.Filters[i].Respond != nil {
			if answered != "" {
				fs.errorf("a route answers with at most one redirect or respond filter; %s already does", v.where(answered))
			}
			answered = fs.path
		}
	}

	if r.Retry != nil {
		checkRetry(s.key("retry"), r.Retry)
	}
	if r.RateLimit != nil {
		v.rateLimit(s.key("rateLimit"), r.RateLimit)
	}
	if r.Fault != nil {
		checkFault(s.key("fault"), r.Fault)
	}
	if r.Mirror != nil {
		v.checkMirror(s.key("mirror"), r.Mirror)
		if answered != "" {
			s.key("mirror").errorf("has no effect: %s answers the request itself", v.where(answered))
		}
	}

	if len(r.Backends) == 0 && answered == "" {
		s.key("backends").errorf("required unless a redirect or respond filter answers the request")
	}
	for i, b := range r.Backends {
		bs := s.key("backends").index(i)
		switch {
		case b.Service == "":
			bs.key("service").errorf("required")
		case !v.services[b.Service]:
			bs.key("service").errorf("service %q is not defined", b.Service)
		default:
			if svc := v.serviceByName(b.Service); svc != nil && svc.Mesh != nil && svc.Mesh.AppProtocol == AppTCP {
				bs.key("service").errorf("service %q is opaque TCP; an HTTP route cannot send to it", b.Service)
			}
		}
		if b.Weight == nil {
			bs.key("weight").errorf("required")
		} else if *b.Weight < 0 {
			bs.key("weight").errorf("must not be negative")
		}
	}
	if r.Timeout != nil {
		checkNotNegative(s.key("timeout"), *r.Timeout)
	}
	v.routeSecurity(s, r)
}

// checkRouteHost checks a route host: a host name or "*." followed by one, without a port.
func checkRouteHost(s scope, h string) {
	name := strings.TrimPrefix(h, "*.")
	switch {
	case strings.Contains(h, ":"):
		s.errorf("host %q must not include a port", h)
	case !isHostname(name):
		s.errorf(`%q is not a host name or a wildcard such as "*.example.org"`, h)
	}
}

// PathNormalization mirrors pathnorm.Options field for field, so the engine converts one into the
// other; this line stops the two drifting apart.
var _ = pathnorm.Options(PathNormalization{})

// checkMatchPath checks an exact or prefix path. Requests are normalised before matching, so a
// path that normalisation would change could never match. Slashes are not merged here because a
// listener may keep them.
func checkMatchPath(s scope, path string) {
	if !strings.HasPrefix(path, "/") {
		s.errorf(`%q must start with "/"`, path)
		return
	}
	norm, err := pathnorm.Normalize(path, pathnorm.Options{KeepSlashes: true, AllowEncodedSlash: true})
	if err != nil {
		s.errorf("%q is not a valid path: %v", path, err)
	} else if norm != path {
		s.errorf("%q is not in normal form, so no request could match it; write %q", path, norm)
	}
}

// checkRouteMatch checks one match entry of a route.
func checkRouteMatch(s scope, m *RouteMatch) {
	if p := m.Path; p == nil {
		s.key("path").errorf("required")
	} else {
		ps := s.key("path")
		exactlyOne(ps, []string{"exact", "prefix", "regex"}, p.Exact != "", p.Prefix != "", p.Regex != "")
		if p.Exact != "" {
			checkMatchPath(ps.key("exact"), p.Exact)
		}
		if p.Prefix != "" {
			checkMatchPath(ps.key("prefix"), p.Prefix)
		}
		if p.Regex != "" {
			checkRegex(ps.key("regex"), p.Regex)
		}
	}
	if m.Method != "" && !isMethod(m.Method) {
		s.key("method").errorf(`%q is not a method; methods are uppercase letters, such as "GET"`, m.Method)
	}
	for i, h := range m.Headers {
		hs := s.key("headers").index(i)
		if h.Name == "" {
			hs.key("name").errorf("required")
		} else if !isToken(h.Name) {
			hs.key("name").errorf("%q is not a valid header name", h.Name)
		}
		checkValueMatch(hs, h.Value, h.Regex, h.Present)
	}
	for i, q := range m.Query {
		qs := s.key("query").index(i)
		if q.Name == "" {
			qs.key("name").errorf("required")
		}
		checkValueMatch(qs, q.Value, q.Regex, q.Present)
	}
}

// checkValueMatch checks the value, regex and present fields of a header or query match.
func checkValueMatch(s scope, value, regex string, present bool) {
	exactlyOne(s, []string{"value", "regex", "present"}, value != "", regex != "", present)
	if regex != "" {
		checkRegex(s.key("regex"), regex)
	}
}
