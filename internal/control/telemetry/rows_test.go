package telemetry

import (
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
)

func edge(dir, src, svc, route, consumer string, n, failed uint64) record.Edge {
	c := record.EdgeCounts{Requests: n, Failures: failed, Buckets: make([]uint64, len(record.LatencyBounds)+1)}
	c.Buckets[3] = n // up to 10ms
	return record.Edge{EdgeKey: record.EdgeKey{Direction: dir, Source: src, Service: svc, Route: route, Consumer: consumer}, EdgeCounts: c}
}

// TestTopRows sums edges that differ only by consumer into one row per edge, busiest first.
func TestTopRows(t *testing.T) {
	rows := TopRows([]record.Edge{
		edge("edge", "", "orders", "api", "billing", 30, 3),
		edge("edge", "", "orders", "api", "", 10, 1),
		edge("outbound", "web.shop", "users", "users", "", 5, 0),
	}, 10*time.Second)
	want := []TopRow{
		{Direction: "edge", Service: "orders", Route: "api", Requests: 40, RPS: 4, Success: 0.9, P50MS: 10, P99MS: 10},
		{Direction: "outbound", Source: "web.shop", Service: "users", Route: "users", Requests: 5, RPS: 0.5, Success: 1, P50MS: 10, P99MS: 10},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
}

// TestConsumerRows counts only what the edge saw, per consumer.
func TestConsumerRows(t *testing.T) {
	rows := ConsumerRows([]record.Edge{
		edge("edge", "", "orders", "api", "billing", 30, 3),
		edge("edge", "", "users", "u", "billing", 10, 1),
		edge("edge", "", "orders", "api", "", 4, 0),
		edge("outbound", "web.shop", "users", "users", "billing", 500, 0),
	})
	n, failed := uint64(40), uint64(4)
	want := []ConsumerRow{{Consumer: "billing", Requests: n, Failures: failed, ErrorRate: 1 - (1 - float64(failed)/float64(n))}, {Consumer: "", Requests: 4}}
	if len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
		t.Fatalf("rows %+v, want %+v", rows, want)
	}
}

// TestOwns decides which paths the dashboard authenticates itself.
// TestImpactRows groups the callers' view of a service by consumer and edge route, and leaves
// out the service's own inbound counters and other services.
func TestImpactRows(t *testing.T) {
	e := func(dir, svc, consumer, route string, n, failed uint64) record.Edge {
		x := edge(dir, "", svc, "r", consumer, n, failed)
		x.EdgeRoute = route
		return x
	}
	rows := ImpactRows([]record.Edge{
		e("outbound", "orders", "acme", "shop-api", 10, 4),
		e("outbound", "orders", "acme", "shop-api", 5, 1),
		e("outbound", "orders", "zeta", "mobile", 8, 0),
		e("inbound", "orders", "acme", "shop-api", 15, 5),
		e("outbound", "payments", "acme", "shop-api", 9, 9),
	}, "orders")
	if len(rows) != 2 || rows[0].Consumer != "acme" || rows[0].Requests != 15 || rows[0].Failures != 5 ||
		rows[0].EdgeRoute != "shop-api" || rows[1].Consumer != "zeta" || rows[1].Failures != 0 {
		t.Fatalf("rows %+v", rows)
	}
	if got := rows[0].ErrorRate; got < 0.33 || got > 0.34 {
		t.Errorf("error rate %v, want 1/3", got)
	}
}
