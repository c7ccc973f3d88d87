package config

import (
	"sort"
	"strings"
)

// checkFilter checks filter f of route r.
func checkFilter(s scope, f *Filter, r *Route) {
	exactlyOne(s, []string{"requestHeaders", "responseHeaders", "rewrite", "redirect", "respond", "securityHeaders"},
		f.RequestHeaders != nil, f.ResponseHeaders != nil, f.Rewrite != nil, f.Redirect != nil, f.Respond != nil, f.SecurityHeaders != nil)
	if f.SecurityHeaders != nil {
		checkSecurityHeaders(s.key("securityHeaders"), f.SecurityHeaders)
	}
	if f.RequestHeaders != nil {
		checkHeaderFilter(s.key("requestHeaders"), f.RequestHeaders)
	}
	if f.ResponseHeaders != nil {
		checkHeaderFilter(s.key("responseHeaders"), f.ResponseHeaders)
	}
	if f.Rewrite != nil {
		checkRewrite(s.key("rewrite"), f.Rewrite, r)
	}
	if f.Redirect != nil {
		checkRedirect(s.key("redirect"), f.Redirect, r)
	}
	if f.Respond != nil {
		checkRespond(s.key("respond"), f.Respond)
	}
}

// checkHeaderFilter checks a request or response header filter.
func checkHeaderFilter(s scope, h *HeaderFilter) {
	if len(h.Set) == 0 && len(h.Add) == 0 && len(h.Remove) == 0 {
		s.errorf("empty; set at least one of set, add or remove")
	}
	checkHeaderMap(s.key("set"), h.Set)
	checkHeaderMap(s.key("add"), h.Add)
	for i, name := range h.Remove {
		if !isToken(name) {
			s.key("remove").index(i).errorf("%q is not a valid header name", name)
		}
	}
}

// checkHeaderMap checks header names and values, in name order so that errors are stable.
func checkHeaderMap(s scope, m map[string]string) {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !isToken(name) {
			s.key(name).errorf("%q is not a valid header name", name)
		}
		if !isHeaderValue(m[name]) {
			s.key(name).errorf("the value must not contain CR, LF or NUL")
		}
	}
}

// checkRewrite checks a rewrite filter of route r.
func checkRewrite(s scope, w *Rewrite, r *Route) {
	if w.Path == "" && w.PathPrefix == "" && w.Host == "" {
		s.errorf("empty; set path, pathPrefix or host")
	}
	checkPathReplacement(s, w.Path, w.PathPrefix, r)
	if w.Host != "" {
		checkHostPort(s.key("host"), w.Host)
	}
}

// checkRedirect checks a redirect filter of route r.
func checkRedirect(s scope, d *Redirect, r *Route) {
	if d.Scheme != "" {
		checkOneOf(s.key("scheme"), d.Scheme, "http", "https")
	}
	if d.Host != "" && !isHost(d.Host) {
		s.key("host").errorf("%q is not a host name or IP address (set the port with port)", d.Host)
	}
	if d.Port < 0 || d.Port > 65535 {
		s.key("port").errorf("%d is not a port in 1..65535", d.Port)
	}
	checkPathReplacement(s, d.Path, d.PathPrefix, r)
	switch d.Status {
	case 301, 302, 303, 307, 308:
	default:
		s.key("status").errorf("%d is not a redirect status; expected 301, 302, 303, 307 or 308", d.Status)
	}
}

// checkRespond checks a respond filter.
func checkRespond(s scope, p *Respond) {
	if p.Status < 200 || p.Status > 599 {
		s.key("status").errorf("%d is not a status in 200..599", p.Status)
	}
	if !isHeaderValue(p.ContentType) {
		s.key("contentType").errorf("must not contain CR, LF or NUL")
	}
}

// checkPathReplacement checks the path and pathPrefix of a rewrite or redirect of route r.
func checkPathReplacement(s scope, path, prefix string, r *Route) {
	if path != "" && prefix != "" {
		s.errorf("set at most one of path and pathPrefix")
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		s.key("path").errorf(`%q must start with "/"`, path)
	}
	if prefix == "" {
		return
	}
	if !strings.HasPrefix(prefix, "/") {
		s.key("pathPrefix").errorf(`%q must start with "/"`, prefix)
	}
	for i, m := range r.Match {
		if m.Path == nil || m.Path.Prefix == "" || m.Path.Exact != "" || m.Path.Regex != "" {
			s.key("pathPrefix").errorf("needs every match of the route to be a path prefix match, and match[%d] is not", i)
			return
		}
	}
}
