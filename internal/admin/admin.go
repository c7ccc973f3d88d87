// Package admin serves meshgate's admin HTTP API: liveness and readiness, Prometheus metrics, the
// running config (GET) and config changes (PUT), recent requests, the dashboard (for a gateway
// from a file), and Go's pprof handlers when enabled. It listens on
// loopback by default.
package admin

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/dashboard"
	"github.com/meshgate/meshgate/internal/gateway"
)

// MaxConfigBytes bounds a config sent with PUT /config.
const MaxConfigBytes = 16 << 20

// Options configure an admin server.
type Options struct {
	// Address is the host:port to listen on.
	Address string
	// Pprof serves Go's pprof handlers.
	Pprof bool
	// Token, when set, is the bearer token every request but /live and /ready must carry.
	Token string
	// TLS, when set, serves HTTPS; with ClientAuth set to require a verified certificate, only
	// clients with a certificate from its client CAs are served (mTLS).
	TLS *tls.Config
	// Ready, when set, is asked by /ready besides the loaded config: a non-nil error makes the
	// proxy not ready and is the answer's body (a sidecar without certificates, or draining).
	Ready func() error
	// ConfigFromControl refuses PUT /config: the proxy's config comes from the control plane.
	ConfigFromControl bool
	// Handlers are role-specific endpoints added to the admin API, by ServeMux pattern.
	Handlers map[string]http.Handler
}

// Server is the admin HTTP server of one gateway.
type Server struct {
	gw    *gateway.Gateway
	log   *slog.Logger
	srv   *http.Server
	ln    net.Listener
	token []byte
	tls   *tls.Config
	extra func() error
	// stats keeps the edge counters for the dashboard of a gateway from a file; nil otherwise.
	stats *localStats
}

// New returns an admin server for gw; Start binds it.
func New(gw *gateway.Gateway, opts Options, log *slog.Logger) *Server {
	s := &Server{gw: gw, log: log, tls: opts.TLS, extra: opts.Ready}
	if opts.Token != "" {
		s.token = []byte(opts.Token)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", s.live)
	mux.HandleFunc("GET /ready", s.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gw.Metrics().Prom, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /config", s.getConfig)
	if opts.ConfigFromControl {
		mux.HandleFunc("PUT /config", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "this proxy takes its config from the control plane: change it there (meshgate apply)", http.StatusConflict)
		})
	} else {
		mux.HandleFunc("PUT /config", s.putConfig)
	}
	mux.Handle("GET /debug/requests", requests(gw.Records()))
	mux.Handle("GET /debug/tap", tap(gw.Records()))
	if !opts.ConfigFromControl {
		// A proxy on the control plane reports its counters there (its dashboard is the
		// control plane's); a gateway from a file keeps them for its own dashboard.
		s.stats = newLocalStats(gw.Records())
		mux.Handle(dashboard.Prefix, dashboard.New(dashboard.Options{API: s.dashboardData(gw, s.stats), Paths: gatewayPaths(), Token: opts.Token}))
	}
	for pattern, h := range opts.Handlers {
		mux.Handle(pattern, h)
	}
	mux.HandleFunc("GET /status", s.status)
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{
		Addr:              opts.Address,
		Handler:           s.guard(mux),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second, // a CPU profile runs 30s by default
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Start binds the admin address and serves in the background.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.srv.Addr)
	if err != nil {
		return err
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	if s.stats != nil {
		s.stats.start()
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		s.log.Warn("admin API is reachable beyond loopback", "address", ln.Addr().String(),
			"token", len(s.token) > 0, "mtls", s.tls != nil && s.tls.ClientAuth == tls.RequireAndVerifyClientCert)
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin server stopped", "error", err)
		}
	}()
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops the admin server.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.stats != nil {
		s.stats.close()
	}
	return s.srv.Shutdown(ctx)
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "live\n")
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.gw.Engine().Table() == nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "no config loaded\n")
		return
	}
	if s.extra != nil {
		if err := s.extra(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, err.Error()+"\n")
			return
		}
	}
	_, _ = io.WriteString(w, "ready\n")
}

// getConfig returns the running config as YAML; its version is in X-Meshgate-Config-Version.
func (s *Server) getConfig(w http.ResponseWriter, _ *http.Request) {
	t := s.gw.Engine().Table()
	if t == nil {
		http.Error(w, "no config loaded", http.StatusServiceUnavailable)
		return
	}
	out, err := yaml.Marshal(t.Config)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Meshgate-Config-Version", strconv.FormatUint(t.Version, 10))
	_, _ = w.Write(out)
}

// putConfigResult is the JSON answer to PUT /config.
type putConfigResult struct {
	Version uint64   `json:"version,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// putConfig validates and applies a YAML config. A refused config answers 400 with every error.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxConfigBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, putConfigResult{Errors: []string{err.Error()}})
		return
	}
	t, err := s.gw.LoadBytesBy(actor(r), "<admin PUT /config>", body)
	if err != nil {
		res := putConfigResult{}
		var list config.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				res.Errors = append(res.Errors, e.Error())
			}
		} else {
			res.Errors = []string{err.Error()}
		}
		writeJSON(w, http.StatusBadRequest, res)
		return
	}
	writeJSON(w, http.StatusOK, putConfigResult{Version: t.Version})
}

// statusResult is the JSON answer to GET /status.
type statusResult struct {
	Version   uint64               `json:"version"`
	LoadedAt  time.Time            `json:"loadedAt"`
	Source    string               `json:"source"`
	LastError *gateway.ReloadError `json:"lastError,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	res := statusResult{LastError: s.gw.LastError()}
	if t := s.gw.Engine().Table(); t != nil {
		res.Version, res.LoadedAt, res.Source = t.Version, t.Loaded, t.Config.Source.File
	}
	writeJSON(w, http.StatusOK, res)
}

// guard requires the bearer token, when one is set, on every path but /live and /ready (which
// orchestrators probe without credentials and which reveal nothing) and the dashboard (which
// checks the token, or its session cookie, itself).
func (s *Server) guard(next http.Handler) http.Handler {
	if s.token == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/live" || r.URL.Path == "/ready" || dashboard.Owns(r) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), s.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="meshgate-admin"`)
			http.Error(w, "401 unauthenticated: the admin API needs its bearer token", http.StatusUnauthorized)
			s.log.Warn("admin request refused: missing or wrong token", "peer", r.RemoteAddr, "path", r.URL.Path)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// actor describes who sent an admin request, for the audit log: the peer address and, when the
// client presented a verified certificate, its subject.
func actor(r *http.Request) string {
	a := "admin-api " + r.RemoteAddr
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		a += " (" + r.TLS.PeerCertificates[0].Subject.String() + ")"
	} else if r.Header.Get("Authorization") != "" {
		a += " (token)"
	}
	return a
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
