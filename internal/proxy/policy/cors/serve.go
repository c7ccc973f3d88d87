package cors

import (
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// middleware implements proxy.Middleware.
func (p *policy) middleware(next proxy.Handler) proxy.Handler {
	return proxy.HandlerFunc(func(x *proxy.Exchange) error { return p.serve(x, next) })
}

// serve answers a preflight itself, or forwards x with the response edit its origin calls for.
func (p *policy) serve(x *proxy.Exchange, next proxy.Handler) error {
	h := x.Req.Header
	origin, hasOrigin := h.Get(hdrOrigin)
	if hasOrigin && h.Count(hdrOrigin) > 1 {
		origin = "" // ambiguous: allowed for none
	}
	if hasOrigin && x.Req.Method == "OPTIONS" && h.Has(hdrRequestMethod) {
		return p.preflight(x, origin)
	}
	edit := p.plainEdit
	if hasOrigin {
		switch allowed := p.allowed(origin); {
		case !allowed:
		case p.star:
			edit = p.starEdit
		default:
			edit = p.editor(origin)
		}
	}
	x.ResponseEdits = append(x.ResponseEdits, edit)
	if hasOrigin {
		// Answers the gateway writes itself after this point (a refusal by authentication or a
		// rate limit, an upstream failure) skip ResponseEdits; a browser could not read them
		// without the CORS headers.
		if w, ok := x.W.(*editWriter); ok {
			w.edit = edit
		} else {
			x.W = &editWriter{ResponseWriter: x.W, edit: edit}
		}
	}
	return next.Serve(x)
}

// editWriter applies a policy's response edit to every final head written through it. The edits
// are idempotent, so a head that went through ResponseEdits already comes out the same.
type editWriter struct {
	proxy.ResponseWriter
	edit func(*httpmsg.Response)
}

// WriteHead implements proxy.ResponseWriter.
func (w *editWriter) WriteHead(resp *httpmsg.Response) error {
	if resp.Status >= 200 {
		w.edit(resp)
	}
	return w.ResponseWriter.WriteHead(resp)
}

// allowed reports whether the Origin value s is an allowed origin.
func (p *policy) allowed(s string) bool {
	if s == nullOrigin {
		_, ok := p.exact[nullOrigin]
		return ok
	}
	o, err := parseOrigin(s)
	if err != nil {
		return false
	}
	if p.anyOrigin {
		return true
	}
	if _, ok := p.exact[o.String()]; ok {
		return true
	}
	for _, w := range p.wildcards {
		if w.match(o) {
			return true
		}
	}
	return false
}

// preflight answers the preflight x: 204 with the CORS headers when its origin, method and
// headers are allowed, otherwise 403 cors_rejected.
func (p *policy) preflight(x *proxy.Exchange, origin string) error {
	if !p.allowed(origin) {
		return p.reject("origin %q is not allowed", origin)
	}
	method := x.Req.Header.Value(hdrRequestMethod)
	if !p.methodAllowed(method) {
		return p.reject("method %q is not allowed", method)
	}
	var requested []string
	for _, f := range x.Req.Header {
		if !httpmsg.EqualFold(f.Name, hdrRequestHeaders) {
			continue
		}
		for name := range strings.SplitSeq(f.Value, ",") {
			name = strings.ToLower(strings.Trim(name, " \t"))
			if name == "" {
				continue
			}
			if !p.headerAllowed(name) {
				return p.reject("request header %q is not allowed", name)
			}
			requested = append(requested, name)
		}
	}

	fields := make([]httpmsg.Field, 0, 6)
	allowOrigin := origin
	if p.star {
		allowOrigin = "*"
	}
	fields = append(fields, httpmsg.Field{Name: hdrAllowOrigin, Value: allowOrigin})
	methods := p.methodsList
	if p.anyMethod {
		methods = method
	}
	fields = append(fields, httpmsg.Field{Name: hdrAllowMethods, Value: methods})
	if len(requested) > 0 {
		fields = append(fields, httpmsg.Field{Name: hdrAllowHeaders, Value: strings.Join(requested, ", ")})
	}
	fields = append(fields, httpmsg.Field{Name: hdrMaxAge, Value: p.maxAge})
	if p.credentials {
		fields = append(fields, httpmsg.Field{Name: hdrAllowCredentials, Value: "true"})
	}
	fields = append(fields, httpmsg.Field{Name: hdrVary, Value: preflightVary})
	return proxy.Respond(x, 204, ReasonPreflight, "", "", fields...)
}

// reject refuses a preflight.
func (p *policy) reject(format string, args ...any) error {
	return proxy.Fail(403, ReasonRejected, fmt.Errorf("cors: route %q: preflight refused: "+format,
		append([]any{p.route}, args...)...))
}

// methodAllowed reports whether a preflight may ask for method (compared case-sensitively, as
// browsers send it).
func (p *policy) methodAllowed(method string) bool {
	if !isToken(method) {
		return false
	}
	if p.anyMethod {
		return true
	}
	for _, m := range p.methods {
		if m == method {
			return true
		}
	}
	return false
}

// headerAllowed reports whether a preflight may ask for the request header name (lower case). A
// "*" in allowHeaders covers every name but Authorization, which must be listed, as in browsers.
func (p *policy) headerAllowed(name string) bool {
	if !isToken(name) {
		return false
	}
	if _, ok := p.headers[name]; ok {
		return true
	}
	return p.anyHeader && name != "authorization"
}

// editor returns the response edit for a request whose allowed origin is allowOrigin (the value
// to send), or for a request with no allowed origin when allowOrigin is "".
func (p *policy) editor(allowOrigin string) func(*httpmsg.Response) {
	return func(r *httpmsg.Response) {
		h := &r.Header
		h.Del(hdrAllowOrigin)
		h.Del(hdrAllowCredentials)
		h.Del(hdrExposeHeaders)
		if allowOrigin != "" {
			h.Add(hdrAllowOrigin, allowOrigin)
			if p.expose != "" {
				h.Add(hdrExposeHeaders, p.expose)
			}
			if p.credentials {
				h.Add(hdrAllowCredentials, "true")
			}
		}
		addVaryOrigin(h)
	}
}

// addVaryOrigin adds Origin to the Vary header unless it already lists Origin or "*".
func addVaryOrigin(h *httpmsg.Header) {
	for _, f := range *h {
		if httpmsg.EqualFold(f.Name, hdrVary) && (httpmsg.HasToken(f.Value, hdrOrigin) || httpmsg.HasToken(f.Value, "*")) {
			return
		}
	}
	h.Add(hdrVary, hdrOrigin)
}
