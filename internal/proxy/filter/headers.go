// Package filter compiles a route's filters (header edits, rewrites, redirects, fixed responses)
// into middlewares of the engine.
package filter

import (
	"sort"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// HeaderEdit is a compiled header filter: removals, then replacements, then additions.
type HeaderEdit struct {
	remove []string
	set    []httpmsg.Field
	add    []httpmsg.Field
}

// NewHeaderEdit compiles f. Map entries are applied in name order so the result is deterministic.
func NewHeaderEdit(f *config.HeaderFilter) *HeaderEdit {
	return &HeaderEdit{remove: append([]string(nil), f.Remove...), set: sortedFields(f.Set), add: sortedFields(f.Add)}
}

func sortedFields(m map[string]string) []httpmsg.Field {
	out := make([]httpmsg.Field, 0, len(m))
	for k, v := range m {
		out = append(out, httpmsg.Field{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Apply edits h in place.
func (e *HeaderEdit) Apply(h *httpmsg.Header) {
	for _, name := range e.remove {
		h.Del(name)
	}
	for _, f := range e.set {
		h.Set(f.Name, f.Value)
	}
	for _, f := range e.add {
		h.Add(f.Name, f.Value)
	}
}

// ApplyResponse edits a response head; it has the shape of proxy.Exchange.ResponseEdits entries.
func (e *HeaderEdit) ApplyResponse(r *httpmsg.Response) { e.Apply(&r.Header) }

// RequestHeaders returns a middleware that edits the request headers sent upstream.
func RequestHeaders(e *HeaderEdit) proxy.Middleware {
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			e.Apply(&x.Req.Header)
			return next.Serve(x)
		})
	}
}

// ResponseHeaders returns a middleware that edits the response headers sent downstream.
func ResponseHeaders(e *HeaderEdit) proxy.Middleware {
	apply := e.ApplyResponse
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			x.ResponseEdits = append(x.ResponseEdits, apply)
			return next.Serve(x)
		})
	}
}

// SecurityHeaders adds the security response headers h configures to upstream responses that
// do not set them already, and to the responses meshgate generates itself on the route (a 401,
// a 429, a 503): Strict-Transport-Security (on HTTPS only), X-Content-Type-Options,
// X-Frame-Options, Referrer-Policy and Content-Security-Policy. Put it first in the route's
// chain so that refusals by earlier policies carry the headers too.
func SecurityHeaders(h *config.SecurityHeaders) proxy.Middleware {
	var fields, hsts []httpmsg.Field
	if h.HSTSMaxAge > 0 {
		v := "max-age=" + strconv.FormatInt(int64(h.HSTSMaxAge/time.Second), 10)
		if h.HSTSIncludeSubdomains {
			v += "; includeSubDomains"
		}
		if h.HSTSPreload {
			v += "; preload"
		}
		hsts = []httpmsg.Field{{Name: "Strict-Transport-Security", Value: v}}
	}
	if h.ContentTypeNosniff == nil || *h.ContentTypeNosniff {
		fields = append(fields, httpmsg.Field{Name: "X-Content-Type-Options", Value: "nosniff"})
	}
	if h.FrameOptions != "" && h.FrameOptions != "off" {
		fields = append(fields, httpmsg.Field{Name: "X-Frame-Options", Value: h.FrameOptions})
	}
	if h.ReferrerPolicy != "" && h.ReferrerPolicy != "off" {
		fields = append(fields, httpmsg.Field{Name: "Referrer-Policy", Value: h.ReferrerPolicy})
	}
	if h.ContentSecurityPolicy != "" {
		fields = append(fields, httpmsg.Field{Name: "Content-Security-Policy", Value: h.ContentSecurityPolicy})
	}
	add := func(fs []httpmsg.Field) func(*httpmsg.Response) {
		return func(r *httpmsg.Response) {
			for _, f := range fs {
				if !r.Header.Has(f.Name) {
					r.Header.Add(f.Name, f.Value)
				}
			}
		}
	}
	plain, secure := add(fields), add(append(append([]httpmsg.Field(nil), fields...), hsts...))
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			edit := plain
			if x.Scheme == "https" {
				edit = secure
			}
			x.ResponseEdits = append(x.ResponseEdits, edit)
			x.LocalReplyEdit = edit
			return next.Serve(x)
		})
	}
}
