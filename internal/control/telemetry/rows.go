package telemetry

import (
	"sort"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
)

// TopRow is one edge of the traffic graph over a window, as GET /v1/top answers it.
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

// TopRows sums edges per direction, source, service and route over covered, busiest first.
func TopRows(edges []record.Edge, covered time.Duration) []TopRow {
	type key struct{ dir, src, svc, route string }
	sum := sumBy(edges, func(e *record.Edge) (key, bool) { return key{e.Direction, e.Source, e.Service, e.Route}, true })
	secs := covered.Seconds()
	if secs <= 0 {
		secs = 1
	}
	rows := make([]TopRow, 0, len(sum))
	for k, c := range sum {
		rows = append(rows, TopRow{Direction: k.dir, Source: k.src, Service: k.svc, Route: k.route, Requests: c.Requests,
			RPS: float64(c.Requests) / secs, Success: success(c), P50MS: c.Quantile(0.5), P99MS: c.Quantile(0.99)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Requests != rows[j].Requests {
			return rows[i].Requests > rows[j].Requests
		}
		if rows[i].Service != rows[j].Service {
			return rows[i].Service < rows[j].Service
		}
		return rows[i].Route < rows[j].Route
	})
	return rows
}

// ConsumerRow is one consumer's edge traffic over a window, as GET /v1/consumers answers it.
type ConsumerRow struct {
	// Consumer is the consumer's name ("" for anonymous requests).
	Consumer string `json:"consumer"`
	// Requests and Failures count its edge requests; ErrorRate is their ratio.
	Requests  uint64  `json:"requests"`
	Failures  uint64  `json:"failures"`
	ErrorRate float64 `json:"errorRate"`
}

// ConsumerRows sums the edge-direction counters per consumer, busiest first.
func ConsumerRows(edges []record.Edge) []ConsumerRow {
	sum := sumBy(edges, func(e *record.Edge) (string, bool) { return e.Consumer, e.Direction == "edge" })
	rows := make([]ConsumerRow, 0, len(sum))
	for k, c := range sum {
		rows = append(rows, ConsumerRow{Consumer: k, Requests: c.Requests, Failures: c.Failures, ErrorRate: 1 - success(c)})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Requests != rows[j].Requests {
			return rows[i].Requests > rows[j].Requests
		}
		return rows[i].Consumer < rows[j].Consumer
	})
	return rows
}

// ImpactRow is what the calls to a service did for one consumer on one edge route, as
// GET /v1/impact answers it.
type ImpactRow struct {
	// Consumer and EdgeRoute are who the calls were made for, and through which public route.
	Consumer  string `json:"consumer"`
	EdgeRoute string `json:"edgeRoute"`
	// Requests reached the service on their behalf; Failures failed there.
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	// ErrorRate is Failures / Requests.
	ErrorRate float64 `json:"errorRate"`
}

// ImpactRows sums the callers' view of service (edge and outbound counters, not the service's
// own inbound ones) per consumer and edge route, most failures first.
func ImpactRows(edges []record.Edge, service string) []ImpactRow {
	type key struct{ consumer, route string }
	sum := sumBy(edges, func(e *record.Edge) (key, bool) {
		return key{e.Consumer, e.EdgeRoute}, e.Service == service && e.Direction != "inbound"
	})
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
	return rows
}

// sumBy merges the counters of the edges keep admits, per the key it gives them.
func sumBy[K comparable](edges []record.Edge, keep func(e *record.Edge) (K, bool)) map[K]*record.EdgeCounts {
	sum := map[K]*record.EdgeCounts{}
	for i := range edges {
		e := &edges[i]
		k, ok := keep(e)
		if !ok {
			continue
		}
		c := sum[k]
		if c == nil {
			c = &record.EdgeCounts{}
			sum[k] = c
		}
		c.Merge(&e.EdgeCounts)
	}
	return sum
}

// success is the share of c's requests that did not fail (1 when there were none).
func success(c *record.EdgeCounts) float64 {
	if c.Requests == 0 {
		return 1
	}
	return 1 - float64(c.Failures)/float64(c.Requests)
}
