package sidecar

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
)

// callWithID calls host through the sidecar's explicit outbound port with a request id.
func callWithID(t *testing.T, s *Sidecar, host, path, id string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.OutboundAddr().String()+path, nil)
	req.Host = host
	req.Header.Set("X-Request-Id", id)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestObserveAcrossHops: the control plane explains a request from every proxy's record of it,
// taps live requests from the proxies, and aggregates their edge counters for top.
func TestObserveAcrossHops(t *testing.T) {
	m := startMesh(t, "")
	m.sidecar("orders", []Port{app(t, "orders")}, nil)
	web := m.sidecar("web", []Port{app(t, "web")}, nil)
	eventually(t, "web reaches orders", func() bool {
		return callWithID(t, web, "orders.shop.mesh", "/warm", "warm-up") == 200
	})
	admin := "http://" + m.plane.AdminAddr().String()
	client := &http.Client{Timeout: 15 * time.Second}

	t.Run("explain", func(t *testing.T) {
		if st := callWithID(t, web, "orders.shop.mesh", "/explained", "req-explain-1"); st != 200 {
			t.Fatalf("call: %d", st)
		}
		var recs []record.Record
		eventually(t, "both proxies' records of the request", func() bool {
			resp, err := client.Get(admin + "/v1/explain/req-explain-1")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			recs = nil
			return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&recs) == nil && len(recs) == 2
		})
		dirs := map[string]record.Record{}
		for _, r := range recs {
			dirs[r.Direction] = r
		}
		out, in := dirs["outbound"], dirs["inbound"]
		if out.Source != "web.shop" || out.Service != "orders.shop" || out.Status != 200 || out.Path != "/explained" {
			t.Errorf("outbound record %+v", out)
		}
		if in.Source != "web.shop" || !strings.HasPrefix(in.Route, "inbound:") || in.Status != 200 {
			t.Errorf("inbound record %+v (the source is the caller's proved identity)", in)
		}
	})

	t.Run("recent", func(t *testing.T) {
		resp, err := client.Get(admin + "/v1/requests?service=orders.shop&n=5")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var recs []record.Record
		if err := json.NewDecoder(resp.Body).Decode(&recs); err != nil || len(recs) == 0 || len(recs) > 5 {
			t.Fatalf("recent records: %v, %d", err, len(recs))
		}
		for _, r := range recs {
			if r.Service != "orders.shop" {
				t.Errorf("a record of service %q passed the filter", r.Service)
			}
		}
	})

	t.Run("tap", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", admin+"/v1/tap?service=orders.shop&for=8s", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("tap: %d", resp.StatusCode)
		}
		go func() {
			for i := range 40 {
				if ctx.Err() != nil {
					return
				}
				callWithID(t, web, "orders.shop.mesh", "/tapped", "req-tap-"+string(rune('a'+i%26)))
				time.Sleep(100 * time.Millisecond)
			}
		}()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var r record.Record
			if json.Unmarshal(sc.Bytes(), &r) == nil && r.Path == "/tapped" && r.Service == "orders.shop" {
				return
			}
		}
		t.Fatal("the tap delivered no record of the calls")
	})

	t.Run("top", func(t *testing.T) {
		eventually(t, "the edge web → orders in top", func() bool {
			resp, err := client.Get(admin + "/v1/top?window=5m")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var top struct {
				Edges []struct {
					Direction, Source, Service string
					Requests                   uint64
					Success                    float64
				} `json:"edges"`
			}
			if json.NewDecoder(resp.Body).Decode(&top) != nil {
				return false
			}
			for _, e := range top.Edges {
				if e.Direction == "outbound" && e.Source == "web.shop" && e.Service == "orders.shop" && e.Requests >= 2 && e.Success == 1 {
					return true
				}
			}
			return false
		})
	})
}
