package dashboard

import (
	"net/http"
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
func TestOwns(t *testing.T) {
	cases := []struct {
		path string
		want bool
	}{
		{"/dashboard/", true},
		{"/dashboard", true},
		{"/dashboard/api/top", true},
		{"/dashboard/../v1/config", false},
		{"/dashboardx", false},
		{"/v1/top", false},
	}
	for _, tc := range cases {
		r, err := http.NewRequest("GET", "http://127.0.0.1"+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.Path = tc.path
		if got := Owns(r); got != tc.want {
			t.Errorf("Owns(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
