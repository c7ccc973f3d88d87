// Package dashboard serves meshgate's web dashboard: one embedded page (HTML, vanilla JS and
// inline SVG; nothing fetched from elsewhere) that shows the traffic graph, consumers, routes and
// their policies, the mesh CA's expiry and recent refusals, refreshed every two seconds.
//
// The page asks only relative URLs (api/top, api/consumers, api/requests, api/status,
// api/routes), so the same page works on the control plane's admin API, where the data comes
// from its /v1 endpoints, and on a gateway's own admin API, where it comes from the gateway's
// record hub. The handler answers those by asking the host's API handler directly, in process.
package dashboard

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Prefix is where the dashboard is mounted on an admin API.
const Prefix = "/dashboard/"

//go:embed page
var pageFiles embed.FS

// Paths are the host API's paths the page's data come from; each answers GET with the query
// the page sent. Config answers the running config as YAML.
type Paths struct {
	Top, Consumers, Requests, Status, Config string
}

// ControlPaths are the control plane admin API's paths.
func ControlPaths() Paths {
	return Paths{Top: "/v1/top", Consumers: "/v1/consumers", Requests: "/v1/requests", Status: "/v1/status", Config: "/v1/config"}
}

// Options configure a dashboard handler.
type Options struct {
	// API answers the data requests (see Paths). It is called in process, behind the
	// dashboard's own authentication, so it may be the admin API's unguarded mux.
	API http.Handler
	// Paths map the page's data to API paths.
	Paths Paths
	// Token is the admin API's bearer token; empty serves the dashboard to anyone who reaches
	// the admin listener (as the rest of the API is).
	Token string
}

// handler serves the dashboard.
type handler struct {
	opts   Options
	assets http.Handler
	index  []byte
	login  []byte
	cookie string
}

// New returns the handler for everything under Prefix. It authenticates requests itself (the
// bearer token, or the session cookie its login form sets): the admin API's guard must let
// Owns paths through.
func New(opts Options) http.Handler {
	sub, _ := fs.Sub(pageFiles, "page") // "page" is embedded: Sub cannot fail
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		return broken(err)
	}
	login, err := fs.ReadFile(sub, "login.html")
	if err != nil {
		return broken(err)
	}
	h := &handler{opts: opts, assets: http.FileServerFS(sub), index: index, login: login}
	if opts.Token != "" {
		h.cookie = sessionValue(opts.Token)
	}
	return h
}

// broken answers every request with the error that kept the dashboard from being built.
func broken(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
	})
}

// Owns reports whether r is for the dashboard, which authenticates its own requests.
func Owns(r *http.Request) bool {
	p := path.Clean("/" + r.URL.Path)
	return p == "/dashboard" || strings.HasPrefix(p, Prefix)
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secureHeaders(w)
	rest := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/dashboard")
	switch {
	case rest == "/login":
		h.serveLogin(w, r)
		return
	case rest == "/logout":
		h.serveLogout(w, r)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "dashboard: method not allowed", http.StatusMethodNotAllowed)
		return
	case rest == "/app.js" || rest == "/style.css":
		// Static code and style: no secrets, and the login page needs the style.
		r2 := r.Clone(r.Context())
		r2.URL.Path = rest
		h.assets.ServeHTTP(w, r2)
		return
	}
	if !h.authorized(r) {
		h.writeLogin(w, http.StatusUnauthorized, "")
		return
	}
	switch {
	case rest == "" || rest == "/":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(h.index)
	case rest == "/api/routes":
		h.routes(w, r)
	case strings.HasPrefix(rest, "/api/"):
		p := h.apiPath(strings.TrimPrefix(rest, "/api/"))
		if p == "" {
			http.NotFound(w, r)
			return
		}
		h.opts.API.ServeHTTP(w, h.inner(r, p))
	default:
		http.NotFound(w, r)
	}
}

// apiPath maps a data name to the host API's path ("" when unknown).
func (h *handler) apiPath(name string) string {
	switch name {
	case "top":
		return h.opts.Paths.Top
	case "consumers":
		return h.opts.Paths.Consumers
	case "requests":
		return h.opts.Paths.Requests
	case "status":
		return h.opts.Paths.Status
	}
	return ""
}

// inner is the GET of path p with r's query, sent to the host API in process; it carries no
// credentials of r.
func (h *handler) inner(r *http.Request, p string) *http.Request {
	u := &url.URL{Path: p, RawQuery: r.URL.RawQuery}
	in, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), nil)
	in.RemoteAddr, in.Host, in.Pattern = r.RemoteAddr, r.Host, ""
	return in
}

// routes answers api/routes: the running config's routes (with their policies) and services,
// as JSON, from the host API's YAML config.
func (h *handler) routes(w http.ResponseWriter, r *http.Request) {
	rec := &bufferWriter{header: http.Header{}, code: http.StatusOK}
	in := h.inner(r, h.opts.Paths.Config)
	in.URL.RawQuery = ""
	h.opts.API.ServeHTTP(rec, in)
	if rec.code != http.StatusOK {
		writeJSON(w, http.StatusBadGateway, map[string]string{"reason": "config_unavailable", "error": strings.TrimSpace(rec.body.String())})
		return
	}
	var doc struct {
		Routes   []map[string]any `yaml:"routes" json:"routes"`
		Services []map[string]any `yaml:"services" json:"services"`
	}
	if err := yaml.Unmarshal(rec.body.Bytes(), &doc); err != nil {
		writeJSON(w, http.StatusBadGateway, map[string]string{"reason": "config_unreadable", "error": "dashboard: the config is not YAML: " + err.Error()})
		return
	}
	if doc.Routes == nil {
		doc.Routes = []map[string]any{}
	}
	if doc.Services == nil {
		doc.Services = []map[string]any{}
	}
	writeJSON(w, http.StatusOK, doc)
}

// bufferWriter keeps an in-process response.
type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// secureHeaders keeps the page to its own origin and code.
func secureHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "+
		"img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
