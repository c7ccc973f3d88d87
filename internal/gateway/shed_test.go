package gateway_test

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLoadShedding: beyond maxActiveRequests a listener answers 503 overloaded at once instead of
// queueing, and serves again when the load drops.
func TestLoadShedding(t *testing.T) {
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners:
  - name: public
    address: "127.0.0.1:0"
    limits: {maxActiveRequests: 2}
routes:
  - name: api
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, up.Addr))
	base := baseURL(t, gw, "public")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, shed := 0, 0
	var slowestShed time.Duration
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i >= 2 {
				time.Sleep(200 * time.Millisecond) // let the first two occupy the listener
			}
			start := time.Now()
			r := get(t, newClient(t), base+"/x?delay=1s")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.Status == 200:
				ok++
			case r.Status == 503 && r.reason() == "overloaded":
				shed++
				slowestShed = max(slowestShed, time.Since(start))
			default:
				t.Errorf("request %d: status %d (%s)", i, r.Status, r.reason())
			}
		}(i)
	}
	wg.Wait()
	if ok != 2 || shed != 4 {
		t.Fatalf("%d served, %d shed; want 2 and 4", ok, shed)
	}
	if slowestShed > 500*time.Millisecond {
		t.Errorf("a shed request took %v: shedding must not wait for the busy requests (1s)", slowestShed)
	}
	if r := get(t, newClient(t), base+"/x"); r.Status != 200 {
		t.Fatalf("after the load: status %d (%s)", r.Status, r.reason())
	}
}
