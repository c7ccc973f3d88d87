package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/observe/record"
)

// telemetryCaller authenticates a telemetry stream with the proxy's workload certificate.
func (s *Server) telemetryCaller(ctx context.Context) (telemetry.Caller, error) {
	c, err := s.peerCaller(ctx)
	if err != nil {
		return telemetry.Caller{}, s.refuse(ctx, "Telemetry", err)
	}
	return telemetry.Caller{Namespace: c.namespace, Service: c.service}, nil
}

// queryDuration reads a duration parameter, bounded by max.
func queryDuration(r *http.Request, name string, def, max time.Duration) (time.Duration, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, errors.New(name + ": want a positive duration such as 30s or 10m")
	}
	return min(d, max), nil
}

// tapRecords answers GET /v1/tap: the records every proxy sees that match the filter, as they
// happen, one JSON object a line, for for=DURATION (default 1m, at most 10m).
func (s *Server) tapRecords(w http.ResponseWriter, r *http.Request) {
	f, err := record.FilterFromQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	d, err := queryDuration(r, "for", time.Minute, 10*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d)
	defer cancel()
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Now().Add(d + 5*time.Second))
	w.Header().Set("Content-Type", "application/x-ndjson")
	if s.telemetry.Proxies() == 0 {
		writeError(w, http.StatusServiceUnavailable, "no_proxies", "no proxy is connected to tap")
		return
	}
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	enc := json.NewEncoder(w)
	_ = s.telemetry.Tap(ctx, f, func(rec record.Record) error {
		if err := enc.Encode(&rec); err != nil {
			return err
		}
		return rc.Flush()
	})
}

// explain answers GET /v1/explain/{id}: every proxy's record of one request, oldest first.
func (s *Server) explain(w http.ResponseWriter, r *http.Request) {
	recs, err := s.telemetry.Lookup(r.Context(), r.PathValue("id"), 2*time.Second)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "no_proxies", err.Error())
		return
	}
	if len(recs) == 0 {
		writeError(w, http.StatusNotFound, "not_found", "no proxy remembers request "+r.PathValue("id")+" (proxies keep their most recent requests)")
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

// top answers GET /v1/top?window=1m: every edge's rate, success and latency.
func (s *Server) top(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "window", time.Minute, 30*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	edges, covered := s.telemetry.Window().Since(d)
	rows := telemetry.TopRows(edges, covered)
	writeJSON(w, http.StatusOK, map[string]any{"window": covered.String(), "edges": rows})
}

// impact answers GET /v1/impact?service=X&since=10m: which consumers and edge routes the
// failures of calls to service X hit, with counts and error rates.
func (s *Server) impact(w http.ResponseWriter, r *http.Request) {
	svc := r.URL.Query().Get("service")
	if svc == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "service is required")
		return
	}
	d, err := queryDuration(r, "since", 10*time.Minute, 30*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	edges, covered := s.telemetry.Window().Since(d)
	rows := telemetry.ImpactRows(edges, svc)
	writeJSON(w, http.StatusOK, map[string]any{"service": svc, "since": covered.String(), "consumers": rows})
}

// recentRecords answers GET /v1/requests: every proxy's most recent records that the filter
// matches (service, route, consumer, status such as 4xx, proxy), newest last; n bounds the
// answer (default 100).
func (s *Server) recentRecords(w http.ResponseWriter, r *http.Request) {
	f, err := record.FilterFromQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	recs, err := s.telemetry.Recent(r.Context(), f, 2*time.Second)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "no_proxies", err.Error())
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	if n <= 0 || n > 1000 {
		n = 100
	}
	if len(recs) > n {
		recs = recs[len(recs)-n:]
	}
	if recs == nil {
		recs = []record.Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

// consumers answers GET /v1/consumers?window=5m: each consumer's edge requests and error rate.
func (s *Server) consumers(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "window", 5*time.Minute, 30*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	edges, covered := s.telemetry.Window().Since(d)
	rows := telemetry.ConsumerRows(edges)
	writeJSON(w, http.StatusOK, map[string]any{"window": covered.String(), "consumers": rows})
}
