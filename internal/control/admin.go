package control

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/dashboard"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/control/token"
	"github.com/meshgate/meshgate/internal/control/xds"
	"github.com/meshgate/meshgate/internal/identity"
)

// maxApplyBytes bounds a config submitted to the admin API.
const maxApplyBytes = config.MaxFileBytes

// Status is what `meshgate control status` shows.
type Status struct {
	// Replica is this replica's id; Leader the current leader's.
	Replica string `json:"replica"`
	Leader  string `json:"leader"`
	// StateVersion is the version of the state served; ConfigVersion the stored config's.
	StateVersion  uint64 `json:"stateVersion"`
	ConfigVersion uint64 `json:"configVersion"`
	// ConfigError is set when the newest stored config cannot be served.
	ConfigError string `json:"configError,omitempty"`
	// Workloads counts live registrations.
	Workloads int `json:"workloads"`
	// Services aggregates the registered workloads' health per mesh service.
	Services []ServiceHealth `json:"services,omitempty"`
	// Problems lists registered workloads left out of their service.
	Problems []string `json:"problems,omitempty"`
	// TrustDomain and Rotation describe the CA.
	TrustDomain string                  `json:"trustDomain"`
	Rotation    identity.RotationStatus `json:"rotation"`
	// Proxies are the proxies connected to this replica, with their ACK/NACK state.
	Proxies []push.ProxyStatus `json:"proxies"`
	// XDS are the xDS clients connected to this replica.
	XDS []xds.ClientStatus `json:"xds"`
}

// adminHandler serves the admin API the CLI uses.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready: no state built yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/config", s.getConfig)
	mux.HandleFunc("GET /v1/config/{kind}", s.getConfig)
	mux.HandleFunc("GET /v1/config/{kind}/{name}", s.getConfig)
	mux.HandleFunc("PUT /v1/config", s.putConfig)
	mux.HandleFunc("DELETE /v1/config/{kind}/{name}", s.deleteObject)
	mux.HandleFunc("GET /v1/tap", s.tapRecords)
	mux.HandleFunc("GET /v1/explain/{id}", s.explain)
	mux.HandleFunc("GET /v1/top", s.top)
	mux.HandleFunc("GET /v1/impact", s.impact)
	mux.HandleFunc("GET /v1/requests", s.recentRecords)
	mux.HandleFunc("GET /v1/consumers", s.consumers)
	mux.HandleFunc("GET /v1/revocations", s.listRevocations)
	mux.HandleFunc("POST /v1/revocations", s.postRevocation)
	mux.HandleFunc("GET /v1/history", s.history)
	mux.HandleFunc("POST /v1/rollback/{version}", s.rollback)
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/workloads", s.workloads)
	mux.HandleFunc("POST /v1/tokens", s.createToken)
	mux.HandleFunc("POST /v1/ca/rotate", s.rotate)
	mux.Handle(dashboard.Prefix, dashboard.New(dashboard.Options{API: mux, Paths: dashboard.ControlPaths(), Token: s.opts.AdminToken}))
	if s.opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s.adminAuth(mux)
}

// adminAuth demands the admin token, when one is set, on everything but /live and /ready, and
// the dashboard, which checks it itself (the token or its session cookie).
func (s *Server) adminAuth(next http.Handler) http.Handler {
	want := []byte("Bearer " + s.opts.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.AdminToken != "" && r.URL.Path != "/live" && r.URL.Path != "/ready" && !dashboard.Owns(r) &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="meshgate-control"`)
			writeError(w, http.StatusUnauthorized, "admin_unauthorized", "a valid admin bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// apiError is the JSON body of every admin error.
type apiError struct {
	// Reason is a stable code; Error a message; Errors the config's problems, one per line.
	Reason string   `json:"reason"`
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}

func writeError(w http.ResponseWriter, code int, reason, msg string, details ...string) {
	w.Header().Set("X-Meshgate-Reason", reason)
	writeJSON(w, code, apiError{Reason: reason, Error: msg, Errors: details})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// writeStoreError answers a failed store-backed call.
func writeStoreError(w http.ResponseWriter, err error) {
	var list config.ErrorList
	switch {
	case errors.As(err, &list):
		lines := make([]string, len(list))
		for i, e := range list {
			lines[i] = e.Error()
		}
		writeError(w, http.StatusUnprocessableEntity, "config_invalid", fmt.Sprintf("the config has %d error(s)", len(list)), lines...)
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "config_conflict", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, store.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", err.Error())
	default:
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	}
}

func actor(r *http.Request) string {
	a := r.Header.Get("X-Meshgate-Actor")
	if a == "" {
		a = "admin"
	}
	return fmt.Sprintf("%s@%s", a, r.RemoteAddr)
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	out, rev, err := s.Object(r.Context(), r.PathValue("kind"), r.PathValue("name"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Meshgate-Config-Version", strconv.FormatUint(rev.Version, 10))
	_, _ = w.Write(out)
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxApplyBytes))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "config_too_large", err.Error())
		return
	}
	source := r.Header.Get("X-Meshgate-Source")
	if source == "" {
		source = "<apply>"
	}
	var expected *uint64
	if v := r.Header.Get("If-Match"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "If-Match must be a config version number")
			return
		}
		expected = &n
	}
	rev, err := s.Apply(r.Context(), source, actor(r), "apply", data, expected)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, revisionInfo(rev))
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request) {
	rev, err := s.Delete(r.Context(), actor(r), r.PathValue("kind"), r.PathValue("name"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, revisionInfo(rev))
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit must be 1..1000")
			return
		}
		limit = n
	}
	revs, err := s.store.History(r.Context(), limit)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	out := make([]RevisionInfo, len(revs))
	for i, rev := range revs {
		out[i] = revisionInfo(rev)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the version must be a number")
		return
	}
	rev, err := s.Rollback(r.Context(), actor(r), v)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, revisionInfo(rev))
}

// RevisionInfo describes a stored revision without its document.
type RevisionInfo struct {
	// Version, Source, Actor, Comment, Time and Digest are the revision's.
	Version uint64    `json:"version"`
	Source  string    `json:"source"`
	Actor   string    `json:"actor"`
	Comment string    `json:"comment,omitempty"`
	Time    time.Time `json:"time"`
	Digest  string    `json:"digest"`
}

func revisionInfo(r store.Revision) RevisionInfo {
	return RevisionInfo{Version: r.Version, Source: r.Source, Actor: r.Actor, Comment: r.Comment, Time: r.Time, Digest: r.Digest}
}

// Status reports the replica's state, its proxies and the CA.
func (s *Server) Status(r *http.Request) Status {
	st, problems, cfgErr := s.state.get()
	out := Status{
		Replica: s.opts.ReplicaID, TrustDomain: s.trustDomain.String(), Rotation: s.ca().Rotation(),
		Proxies: s.push.Status(), XDS: s.xds.Status(),
	}
	if l, err := s.store.Leader(r.Context()); err == nil {
		out.Leader = l
	}
	if st != nil {
		out.StateVersion, out.ConfigVersion, out.Workloads = st.Version, st.ConfigVersion, len(st.Workloads)
		out.Services = serviceHealth(st.Workloads)
	}
	if cfgErr != nil {
		out.ConfigError = cfgErr.Error()
	}
	for _, p := range problems {
		out.Problems = append(out.Problems, p.String())
	}
	return out
}

// ServiceHealth counts one mesh service's registered workloads by health.
type ServiceHealth struct {
	// Service is "namespace/service".
	Service string `json:"service"`
	// Healthy, Unhealthy and Draining count its workloads in each state.
	Healthy   int `json:"healthy"`
	Unhealthy int `json:"unhealthy"`
	Draining  int `json:"draining"`
}

// serviceHealth aggregates workloads (sorted by ID) per service, sorted by service.
func serviceHealth(ws []state.Workload) []ServiceHealth {
	idx := map[string]int{}
	var out []ServiceHealth
	for i := range ws {
		k := ws[i].Key()
		j, ok := idx[k]
		if !ok {
			j = len(out)
			idx[k] = j
			out = append(out, ServiceHealth{Service: k})
		}
		switch ws[i].Health {
		case state.HealthHealthy:
			out[j].Healthy++
		case state.HealthUnhealthy:
			out[j].Unhealthy++
		default:
			out[j].Draining++
		}
	}
	slices.SortFunc(out, func(a, b ServiceHealth) int { return strings.Compare(a.Service, b.Service) })
	return out
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Status(r))
}

func (s *Server) workloads(w http.ResponseWriter, r *http.Request) {
	ws, err := s.store.Workloads(r.Context())
	if err != nil {
		writeStoreError(w, err)
		return
	}
	if ws == nil {
		ws = []state.Workload{}
	}
	writeJSON(w, http.StatusOK, ws)
}

// TokenRequest asks the admin API for a join token.
type TokenRequest struct {
	// Namespace and Service are granted ("*" for any).
	Namespace string `json:"namespace"`
	Service   string `json:"service"`
	// TTL is the token's lifetime ("24h"); empty never expires.
	TTL string `json:"ttl,omitempty"`
	// Description says what the token is for.
	Description string `json:"description,omitempty"`
}

// TokenResponse carries a new token, shown only once.
type TokenResponse struct {
	// Token is the secret to give the proxy.
	Token string `json:"token"`
	// Record describes it.
	Record token.Record `json:"record"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "ttl: "+err.Error())
			return
		}
	}
	tok, rec, err := s.tokens.Create(r.Context(), token.Grant{Namespace: req.Namespace, Service: req.Service}, ttl, req.Description)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	s.log.Info("control: join token created", "token_id", rec.ID, "grant", rec.Grant.String(), "actor", actor(r))
	writeJSON(w, http.StatusOK, TokenResponse{Token: tok, Record: rec})
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	if err := s.RotateRoot(r.Context()); err != nil {
		writeError(w, http.StatusConflict, "rotation_refused", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.ca().Rotation())
}
