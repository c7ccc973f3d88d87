package admin

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/control/dashboard"
	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/record"
)

// Dashboard window: the edge counters are taken from the record hub every dashboardStep and
// kept for dashboardSpan, in buckets of dashboardStep.
const (
	dashboardStep = 2 * time.Second
	dashboardSpan = 30 * time.Minute
)

// localStats keeps a gateway's own edge counters for its dashboard. It is used only when no
// agent takes them (a gateway from a file): Stats.Take is destructive.
type localStats struct {
	hub  *record.Hub
	win  *telemetry.Window
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newLocalStats(hub *record.Hub) *localStats {
	return &localStats{hub: hub, win: telemetry.NewWindow(dashboardStep, dashboardSpan, nil), stop: make(chan struct{})}
}

// start moves the hub's counters into the window every step until close.
func (l *localStats) start() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTicker(dashboardStep)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.flush()
			}
		}
	}()
}

func (l *localStats) flush() { l.win.Add(l.hub.Stats().Take()) }

func (l *localStats) close() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// since flushes the hub's latest counters and returns the window's edges over d.
func (l *localStats) since(d time.Duration) ([]record.Edge, time.Duration) {
	l.flush()
	return l.win.Since(d)
}

// dashboardData serves the gateway's dashboard data in the shapes of the control plane's
// /v1/top, /v1/consumers and /v1/requests, plus its status and config; the dashboard calls it in
// process, behind its own authentication.
func (s *Server) dashboardData(gw *gateway.Gateway, l *localStats) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /top", func(w http.ResponseWriter, r *http.Request) {
		d, ok := windowParam(w, r, time.Minute)
		if !ok {
			return
		}
		edges, covered := l.since(d)
		writeJSON(w, http.StatusOK, map[string]any{"window": covered.Round(time.Second).String(), "edges": telemetry.TopRows(edges, covered)})
	})
	mux.HandleFunc("GET /consumers", func(w http.ResponseWriter, r *http.Request) {
		d, ok := windowParam(w, r, 5*time.Minute)
		if !ok {
			return
		}
		edges, covered := l.since(d)
		writeJSON(w, http.StatusOK, map[string]any{"window": covered.Round(time.Second).String(), "consumers": telemetry.ConsumerRows(edges)})
	})
	mux.HandleFunc("GET /requests", func(w http.ResponseWriter, r *http.Request) {
		f, err := record.FilterFromQuery(r.URL.Query())
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"reason": "bad_request", "error": err.Error()})
			return
		}
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n <= 0 || n > 1000 {
			n = 100
		}
		out := gw.Records().Ring().Recent(f, n)
		if out == nil {
			out = []record.Record{}
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("GET /status", s.status)
	mux.HandleFunc("GET /config", s.getConfig)
	return mux
}

// gatewayPaths are the dashboardData paths.
func gatewayPaths() dashboard.Paths {
	return dashboard.Paths{Top: "/top", Consumers: "/consumers", Requests: "/requests", Status: "/status", Config: "/config"}
}

// windowParam reads the window query parameter (default def, at most 30 minutes); it answers
// 400 itself when the parameter is malformed.
func windowParam(w http.ResponseWriter, r *http.Request, def time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return def, true
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"reason": "bad_request", "error": "window: want a positive duration such as 30s or 10m"})
		return 0, false
	}
	return min(d, dashboardSpan), true
}
