package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
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

// queryFilter reads a record filter from the query.
func queryFilter(r *http.Request) (*record.Filter, error) {
	q := r.URL.Query()
	f := &record.Filter{Service: q.Get("service"), Route: q.Get("route"), Consumer: q.Get("consumer"),
		Status: q.Get("status"), Proxy: q.Get("proxy")}
	return f, f.Check()
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
	f, err := queryFilter(r)
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

// TopRow is one edge of `meshgate top` and the dashboard.
type TopRow struct {
	// Direction, Source, Service and Route identify the edge.
	Direction string `json:"direction"`
	Source    string `json:"source"`
	Service   string `json:"service"`
	Route     string `json:"route"`
	// Requests is the count over the window; RPS the rate.
	Requests uint64  `json:"requests"`
	RPS      float64 `json:"rps"`
	// Success is the share of requests that did not fail.
	Success float64 `json:"success"`
	// P50MS and P99MS estimate the latency.
	P50MS float64 `json:"p50Ms"`
	P99MS float64 `json:"p99Ms"`
}

// top answers GET /v1/top?window=1m: every edge's rate, success and latency.
func (s *Server) top(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "window", time.Minute, 30*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	edges, covered := s.telemetry.Window().Since(d)
	type key struct{ dir, src, svc, route string }
	sum := map[key]*record.EdgeCounts{}
	for i := range edges {
		e := &edges[i]
		k := key{e.Direction, e.Source, e.Service, e.Route}
		c := sum[k]
		if c == nil {
			c = &record.EdgeCounts{}
			sum[k] = c
		}
		c.Merge(&e.EdgeCounts)
	}
	rows := make([]TopRow, 0, len(sum))
	for k, c := range sum {
		rows = append(rows, TopRow{Direction: k.dir, Source: k.src, Service: k.svc, Route: k.route, Requests: c.Requests,
			RPS: float64(c.Requests) / covered.Seconds(), Success: success(c), P50MS: c.Quantile(0.5), P99MS: c.Quantile(0.99)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Requests != rows[j].Requests {
			return rows[i].Requests > rows[j].Requests
		}
		return rows[i].Service < rows[j].Service
	})
	writeJSON(w, http.StatusOK, map[string]any{"window": covered.String(), "edges": rows})
}

func success(c *record.EdgeCounts) float64 {
	if c.Requests == 0 {
		return 1
	}
	return 1 - float64(c.Failures)/float64(c.Requests)
}

// ImpactRow is what failures of a service did to one consumer on one edge route.
type ImpactRow struct {
	// Consumer and EdgeRoute are who was hit, and through which public route.
	Consumer  string `json:"consumer"`
	EdgeRoute string `json:"edgeRoute"`
	// Requests reached the service on their behalf; Failures failed there.
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	// ErrorRate is Failures / Requests.
	ErrorRate float64 `json:"errorRate"`
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
	type key struct{ consumer, route string }
	sum := map[key]*record.EdgeCounts{}
	for i := range edges {
		e := &edges[i]
		// The callers' view of the service: outbound calls from sidecars and the gateway's own.
		if e.Service != svc || e.Direction == "inbound" {
			continue
		}
		k := key{e.Consumer, e.EdgeRoute}
		c := sum[k]
		if c == nil {
			c = &record.EdgeCounts{}
			sum[k] = c
		}
		c.Merge(&e.EdgeCounts)
	}
	rows := make([]ImpactRow, 0, len(sum))
	for k, c := range sum {
		rows = append(rows, ImpactRow{Consumer: k.consumer, EdgeRoute: k.route, Requests: c.Requests, Failures: c.Failures,
			ErrorRate: 1 - success(c)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Failures != rows[j].Failures {
			return rows[i].Failures > rows[j].Failures
		}
		return rows[i].Consumer < rows[j].Consumer
	})
	writeJSON(w, http.StatusOK, map[string]any{"service": svc, "since": covered.String(), "consumers": rows})
}

// recentRecords answers GET /v1/requests: every proxy's most recent records that the filter
// matches (service, route, consumer, status such as 4xx, proxy), newest last; n bounds the
// answer (default 100).
func (s *Server) recentRecords(w http.ResponseWriter, r *http.Request) {
	f, err := queryFilter(r)
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

// ConsumerRow is one consumer's traffic over a window, as the edge saw it.
type ConsumerRow struct {
	// Consumer is the consumer's name ("" for anonymous requests).
	Consumer string `json:"consumer"`
	// Requests and Failures count its edge requests; ErrorRate is their ratio.
	Requests  uint64  `json:"requests"`
	Failures  uint64  `json:"failures"`
	ErrorRate float64 `json:"errorRate"`
}

// consumers answers GET /v1/consumers?window=5m: each consumer's edge requests and error rate.
func (s *Server) consumers(w http.ResponseWriter, r *http.Request) {
	d, err := queryDuration(r, "window", 5*time.Minute, 30*time.Minute)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	edges, covered := s.telemetry.Window().Since(d)
	sum := map[string]*record.EdgeCounts{}
	for i := range edges {
		e := &edges[i]
		if e.Direction != "edge" {
			continue
		}
		c := sum[e.Consumer]
		if c == nil {
			c = &record.EdgeCounts{}
			sum[e.Consumer] = c
		}
		c.Merge(&e.EdgeCounts)
	}
	rows := make([]ConsumerRow, 0, len(sum))
	for k, c := range sum {
		rows = append(rows, ConsumerRow{Consumer: k, Requests: c.Requests, Failures: c.Failures, ErrorRate: 1 - success(c)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Requests > rows[j].Requests })
	writeJSON(w, http.StatusOK, map[string]any{"window": covered.String(), "consumers": rows})
}
