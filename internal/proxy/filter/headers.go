// Package filter compiles a route's filters (header edits, rewrites, redirects, fixed responses)
// into middlewares of the engine.
package filter

import (
	"sort"

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
