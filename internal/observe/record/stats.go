package record

import (
	"sort"
	"sync"
	"time"
)

// EdgeKey identifies one edge of the traffic graph as one proxy saw it.
type EdgeKey struct {
	// Direction is the records' direction ("edge", "inbound", "outbound").
	Direction string `json:"direction"`
	// Source is the calling service ("SERVICE.NAMESPACE"), the gateway's name, or "".
	Source string `json:"source"`
	// Service is the called service (its config name).
	Service string `json:"service"`
	// Route is the route that served the calls.
	Route string `json:"route"`
	// Consumer is the edge consumer the calls were made for, or "", and EdgeRoute the public
	// route they came in by.
	Consumer  string `json:"consumer,omitempty"`
	EdgeRoute string `json:"edgeRoute,omitempty"`
}

// LatencyBounds are the upper bounds of the latency buckets, in milliseconds.
var LatencyBounds = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// EdgeCounts are the counters of one edge.
type EdgeCounts struct {
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
	// LatencySumMS is the sum of the requests' durations in milliseconds.
	LatencySumMS float64 `json:"latencySumMs"`
	// Buckets count requests by duration: Buckets[i] counts those up to LatencyBounds[i]; the
	// last one counts the rest.
	Buckets []uint64 `json:"buckets"`
}

// add folds one record in.
func (c *EdgeCounts) add(r *Record) {
	if c.Buckets == nil {
		c.Buckets = make([]uint64, len(LatencyBounds)+1)
	}
	c.Requests++
	if r.Failed() {
		c.Failures++
	}
	ms := float64(r.Duration) / float64(time.Millisecond)
	c.LatencySumMS += ms
	i := sort.SearchFloat64s(LatencyBounds, ms)
	c.Buckets[i]++
}

// Merge adds o to c.
func (c *EdgeCounts) Merge(o *EdgeCounts) {
	if c.Buckets == nil {
		c.Buckets = make([]uint64, len(LatencyBounds)+1)
	}
	c.Requests += o.Requests
	c.Failures += o.Failures
	c.LatencySumMS += o.LatencySumMS
	for i := range o.Buckets {
		if i < len(c.Buckets) {
			c.Buckets[i] += o.Buckets[i]
		}
	}
}

// Quantile estimates the q-quantile of the latency in milliseconds (the bucket's upper bound).
func (c *EdgeCounts) Quantile(q float64) float64 {
	if c.Requests == 0 {
		return 0
	}
	want := uint64(q*float64(c.Requests) + 0.5)
	var seen uint64
	for i, n := range c.Buckets {
		seen += n
		if seen >= want && n > 0 {
			if i < len(LatencyBounds) {
				return LatencyBounds[i]
			}
			return LatencyBounds[len(LatencyBounds)-1] * 2
		}
	}
	return LatencyBounds[len(LatencyBounds)-1] * 2
}

// Edge is one edge and its counts.
type Edge struct {
	EdgeKey
	EdgeCounts
}

// maxEdges bounds the distinct edges counted between two takes (consumers are many).
const maxEdges = 10000

// Stats counts requests per edge since the last Take.
type Stats struct {
	mu    sync.Mutex
	edges map[EdgeKey]*EdgeCounts
}

// NewStats returns empty counters.
func NewStats() *Stats { return &Stats{edges: map[EdgeKey]*EdgeCounts{}} }

// Add counts one record.
func (s *Stats) Add(r *Record) {
	k := EdgeKey{Direction: r.Direction, Source: r.Source, Service: r.Service, Route: r.Route, Consumer: r.Consumer, EdgeRoute: r.EdgeRoute}
	if r.Direction == "edge" {
		k.Source = "" // client addresses are not graph nodes
	}
	s.mu.Lock()
	c := s.edges[k]
	if c == nil {
		if len(s.edges) >= maxEdges {
			k.Consumer = "(other)"
			if c = s.edges[k]; c == nil {
				c = &EdgeCounts{}
				s.edges[k] = c
			}
		} else {
			c = &EdgeCounts{}
			s.edges[k] = c
		}
	}
	c.add(r)
	s.mu.Unlock()
}

// Take returns the counts since the last Take and starts again.
func (s *Stats) Take() []Edge {
	s.mu.Lock()
	edges := s.edges
	s.edges = make(map[EdgeKey]*EdgeCounts, len(edges))
	s.mu.Unlock()
	out := make([]Edge, 0, len(edges))
	for k, c := range edges {
		out = append(out, Edge{EdgeKey: k, EdgeCounts: *c})
	}
	return out
}
