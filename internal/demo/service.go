package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// ServiceOptions configure one demo mesh service process (`meshgate demo-service`).
type ServiceOptions struct {
	// Service is "web", "orders" or "payments".
	Service string
	// Instance names this replica.
	Instance string
	// Listen is where it serves.
	Listen string
	// Proxy, when set, is the sidecar's outbound address used as HTTP proxy (explicit mode);
	// empty in transparent mode, where mesh names resolve and connections are intercepted.
	Proxy string
}

// hop is what one demo service answers: who served, and what the next hop answered.
type hop struct {
	Service  string          `json:"service"`
	Instance string          `json:"instance"`
	Next     json.RawMessage `json:"next,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// next is the service each demo service calls on GET /order.
var next = map[string]string{"web": "http://orders.shop.mesh/order", "orders": "http://payments.shop.mesh/charge"}

// RunService serves one demo mesh service until ctx ends. GET /order (web, orders) calls the next
// service through the mesh and returns the chain; GET /charge answers for payments; POST /crash
// makes the process exit (its sidecar then drains and stops, and callers fail over).
func RunService(ctx context.Context, o ServiceOptions, log *slog.Logger) error {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	if o.Proxy != "" {
		u, err := url.Parse(o.Proxy)
		if err != nil {
			return fmt.Errorf("demo: --proxy: %w", err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	answer := func(w http.ResponseWriter, r *http.Request) {
		h := hop{Service: o.Service, Instance: o.Instance}
		status := 200
		if target, ok := next[o.Service]; ok {
			req, _ := http.NewRequestWithContext(r.Context(), "GET", target, nil)
			// Forward what a traced mesh application forwards: the request id, the trace
			// context and the edge context (who the request is for).
			for _, h := range []string{"X-Request-Id", "Traceparent", "Tracestate", "Baggage", "X-Meshgate-Context"} {
				if v := r.Header.Get(h); v != "" {
					req.Header.Set(h, v)
				}
			}
			resp, err := client.Do(req)
			if err != nil {
				h.Error, status = err.Error(), 502
			} else {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if json.Valid(body) {
					h.Next = body
				} else {
					h.Error = fmt.Sprintf("%s answered %d %s: %s", target, resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"), body)
				}
				if resp.StatusCode != 200 {
					status = resp.StatusCode
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-By", o.Instance)
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(h)
	}
	mux.HandleFunc("GET /order", answer)
	mux.HandleFunc("GET /charge", answer)
	mux.HandleFunc("GET /{$}", answer)
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "%s stops now; its sidecar drains and callers fail over\n", o.Instance)
		log.Warn("crash requested; exiting", "instance", o.Instance)
		go func() { time.Sleep(100 * time.Millisecond); os.Exit(3) }()
	})
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("demo service listening", "service", o.Service, "instance", o.Instance, "address", ln.Addr().String())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
