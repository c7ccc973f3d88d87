package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Reload-under-load parameters: about 2000 requests/s for 10 s over 16 keep-alive connections,
// while 20 reloads, one every 450 ms, switch the root route between two services.
const (
	loadConns    = 16
	loadRate     = 2000 // requests per second, all connections together
	loadDuration = 10 * time.Second
	loadReloads  = 20
	reloadEvery  = 450 * time.Millisecond
)

// loadConfig is the config of generation gen: "/" goes to service a (even gen) or b (odd gen)
// with the response header X-Marker set to "gen-N", and "/c" goes to service c, unchanged in
// every generation.
func loadConfig(gen int, a, b, c *upstream) string {
	name, ep := "svc-a", a.Addr
	if gen%2 == 1 {
		name, ep = "svc-b", b.Addr
	}
	return configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: root
    filters:
      - responseHeaders: {set: {X-Marker: gen-%d}}
    backends: [{service: %s}]
  - name: third
    match: [{path: {prefix: /c}}]
    backends: [{service: svc-c}]
services:
  - name: %s
    endpoints: [{address: %q}]
  - name: svc-c
    endpoints: [{address: %q}]
`, gen, name, name, ep, c.Addr)
}

// loadStats counts what the load generator saw.
type loadStats struct {
	sent, failed, transportErrs, badStatus, badBody atomic.Int64
	late                                            atomic.Int64 // requests sent more than 50ms behind schedule
	firstErrs                                       sync.Map     // a few failure descriptions, for the report
	errCount                                        atomic.Int64
}

func (s *loadStats) fail(kind *atomic.Int64, msg string) {
	s.failed.Add(1)
	kind.Add(1)
	s.note(msg)
}

// note records msg as one of the first ten problems seen.
func (s *loadStats) note(msg string) {
	if n := s.errCount.Add(1); n <= 10 {
		s.firstErrs.Store(n, msg)
	}
}

// watchedConn reports the first read error on a connection the client did not close itself: the
// server ended it. net/http retries an idempotent request on such a connection silently, so this
// is the only way to see it.
type watchedConn struct {
	net.Conn
	onEnd    func(error)
	closed   atomic.Bool
	reported atomic.Bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && !c.closed.Load() && c.reported.CompareAndSwap(false, true) {
		c.onEnd(err)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// TestReloadUnderLoad is the headline test: steady traffic over keep-alive connections while the
// config is reloaded again and again must see no failure at all, every reload must take effect at
// once, and a service whose config did not change must keep its upstream connection pool.
func TestReloadUnderLoad(t *testing.T) {
	a := startUpstream(t, "A", upstreamOptions{Handler: fixedBody("A")})
	b := startUpstream(t, "B", upstreamOptions{Handler: fixedBody("B")})
	c := startUpstream(t, "C", upstreamOptions{Handler: fixedBody("C")})
	gw := startGateway(t, loadConfig(0, a, b, c))
	v0 := gw.Engine().Table().Version
	base := baseURL(t, gw, "edge")

	var stats loadStats
	var clientDials atomic.Int64
	clients := make([]*http.Client, loadConns)
	for i := range clients {
		d := &net.Dialer{Timeout: 5 * time.Second}
		tr := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				clientDials.Add(1)
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &watchedConn{Conn: c, onEnd: func(err error) {
					stats.note(fmt.Sprintf("client connection %d ended by the gateway: %v", i, err))
				}}, nil
			},
			MaxConnsPerHost:     1,
			MaxIdleConnsPerHost: 1,
		}
		t.Cleanup(tr.CloseIdleConnections)
		clients[i] = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}

	var liveGen atomic.Int64 // the generation of the config in force
	var perGen [loadReloads + 1]atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(loadDuration)
	interval := time.Duration(loadConns) * time.Second / loadRate // per connection
	maxPerConn := int(loadDuration/interval) + 1

	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := time.Duration(i) * interval / loadConns
			for k := 0; k < maxPerConn; k++ {
				at := start.Add(offset + time.Duration(k)*interval)
				if !at.Before(end) || !time.Now().Before(end) {
					return
				}
				if d := time.Until(at); d > 0 {
					time.Sleep(d)
				} else if d < -50*time.Millisecond {
					stats.late.Add(1)
				}
				path, want := "/", "AB"
				if k%2 == 1 {
					path, want = "/c", "C"
				}
				stats.sent.Add(1)
				perGen[liveGen.Load()].Add(1)
				resp, err := cl.Get(base + path)
				if err != nil {
					stats.fail(&stats.transportErrs, fmt.Sprintf("GET %s: %v", path, err))
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.Close {
					stats.note(fmt.Sprintf("GET %s: the gateway asked to close the connection", path))
				}
				switch {
				case err != nil:
					stats.fail(&stats.transportErrs, fmt.Sprintf("GET %s: reading body: %v", path, err))
				case resp.StatusCode != http.StatusOK:
					stats.fail(&stats.badStatus, fmt.Sprintf("GET %s: status %d reason %q body %q", path, resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"), body))
				case len(body) != 1 || !strings.Contains(want, string(body)):
					stats.fail(&stats.badBody, fmt.Sprintf("GET %s: body %q, want one of %q", path, body, want))
				}
			}
		}()
	}

	// The reloader: generation i goes live at start+i*450ms; right after each reload, a probe
	// client of its own must see the new generation's service and marker.
	probe := newClient(t)
	var reloadErrs []string
	var maxObserve time.Duration
	for gen := 1; gen <= loadReloads; gen++ {
		time.Sleep(time.Until(start.Add(time.Duration(gen) * reloadEvery)))
		if _, err := gw.LoadBytes("test.yaml", []byte(loadConfig(gen, a, b, c))); err != nil {
			reloadErrs = append(reloadErrs, fmt.Sprintf("reload %d refused: %v", gen, err))
			continue
		}
		liveGen.Store(int64(gen))
		wantBody, wantMarker := "A", fmt.Sprintf("gen-%d", gen)
		if gen%2 == 1 {
			wantBody = "B"
		}
		t0 := time.Now()
		seen := false
		var last string
		for tries := 0; tries < 100 && time.Since(t0) < time.Second; tries++ {
			resp, err := probe.Get(base + "/")
			if err != nil {
				last = err.Error()
				time.Sleep(5 * time.Millisecond)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			last = fmt.Sprintf("status %d body %q marker %q", resp.StatusCode, body, resp.Header.Get("X-Marker"))
			if resp.StatusCode == http.StatusOK && string(body) == wantBody && resp.Header.Get("X-Marker") == wantMarker {
				seen = true
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if !seen {
			reloadErrs = append(reloadErrs, fmt.Sprintf("reload %d: body %q marker %q never observed; last: %s", gen, wantBody, wantMarker, last))
		}
		maxObserve = max(maxObserve, time.Since(t0))
	}
	wg.Wait()
	elapsed := time.Since(start)

	sent := stats.sent.Load()
	rate := float64(sent) / loadDuration.Seconds()
	t.Logf("load: sent %d requests in %v (%.0f req/s, target %d), failed %d (transport %d, status %d, body %d), late %d, client connections %d",
		sent, elapsed.Round(time.Millisecond), rate, loadRate, stats.failed.Load(), stats.transportErrs.Load(),
		stats.badStatus.Load(), stats.badBody.Load(), stats.late.Load(), clientDials.Load())
	t.Logf("upstream connections opened: A %d, B %d, C %d; slowest reload observation %v",
		a.NewConns.Load(), b.NewConns.Load(), c.NewConns.Load(), maxObserve.Round(time.Millisecond))
	stats.firstErrs.Range(func(_, v any) bool {
		t.Errorf("load problem: %s", v)
		return true
	})
	if n := stats.failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed; want 0", n, sent)
	}
	for _, e := range reloadErrs {
		t.Error(e)
	}
	if got := gw.Engine().Table().Version; got != v0+loadReloads {
		t.Errorf("table version %d after %d reloads from %d; want %d", got, loadReloads, v0, v0+loadReloads)
	}
	// Every generation keeps svc-c unchanged: its pool must survive, so the upstream sees about as
	// many connections as there are concurrent requests, not a fresh set per reload.
	if n, limit := c.NewConns.Load(), int64(2*loadConns); n > limit {
		t.Errorf("upstream C accepted %d connections; want at most %d (its pool did not survive reloads)", n, limit)
	}
	// The achieved rate depends on the machine (and the race detector), so it is reported, not
	// asserted; what is asserted is that traffic ran under every generation of the config.
	for gen := range perGen {
		if n := perGen[gen].Load(); n == 0 {
			t.Errorf("no request was sent while generation %d was live", gen)
		}
	}
}

// fixedBody answers every request with body.
func fixedBody(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, body)
	})
}

// TestBadConfigRefused checks that a config that fails (to parse, to validate, or to bind) is
// refused with an error naming the problem, and that the running config keeps serving untouched.
func TestBadConfigRefused(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "up", upstreamOptions{})
	good := configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: all
    backends: [{service: up}]
services:
  - name: up
    endpoints: [{address: %q}]
`, up.Addr)
	gw := startGateway(t, good)
	client := newClient(t)
	base := baseURL(t, gw, "edge")
	table := gw.Engine().Table()

	// Another socket holds this address: a listener configured on it cannot bind.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	spare := freeAddr(t)

	tests := []struct {
		desc   string
		source string
		yaml   string
		want   []string // substrings of one LastError entry
	}{
		{
			desc:   "YAML syntax error",
			source: "bad-syntax.yaml",
			yaml: `version: 1
admin: {address: "off"}
listeners: : edge
routes: []
`,
			want: []string{"bad-syntax.yaml:3:", "mapping values are not allowed"},
		},
		{
			desc:   "route references a missing service",
			source: "bad-ref.yaml",
			yaml: configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
routes:
  - name: all
    backends: [{service: up}]
  - name: broken
    match: [{path: {prefix: /x}}]
    backends:
      - {service: nope}
services:
  - name: up
    endpoints: [{address: %q}]
`, up.Addr),
			want: []string{"bad-ref.yaml:12:", `route "broken"`, "nope"},
		},
		{
			desc:   "listener address already in use",
			source: "bad-bind.yaml",
			yaml: configHead + fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0"}
  - {name: spare, address: %q}
  - {name: taken, address: %q}
routes:
  - name: all
    backends: [{service: up}]
services:
  - name: up
    endpoints: [{address: %q}]
`, spare, busy.Addr().String(), up.Addr),
			want: []string{`listener "taken"`, "address already in use"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := gw.LoadBytes(tc.source, []byte(tc.yaml))
			if err == nil {
				t.Fatal("config accepted; want it refused")
			}
			le := gw.LastError()
			if le == nil {
				t.Fatalf("LastError is nil after a refused config (error: %v)", err)
			}
			t.Logf("LastError: %q", le.Errors)
			found := false
			for _, e := range le.Errors {
				ok := true
				for _, w := range tc.want {
					ok = ok && strings.Contains(e, w)
				}
				found = found || ok
			}
			if !found {
				t.Errorf("LastError().Errors = %q; want an entry containing all of %q", le.Errors, tc.want)
			}
			if got := gw.Engine().Table(); got != table || got.Version != table.Version {
				t.Errorf("table changed to version %d; want version %d kept", got.Version, table.Version)
			}
			if r := get(t, client, base+"/still"); r.Status != 200 || r.Echo == nil || r.Echo.Server != "up" {
				t.Errorf("old config no longer serves: status %d reason %q", r.Status, r.reason())
			}
			if gw.Addr("spare") != nil || gw.Addr("taken") != nil {
				t.Error("a listener of the refused config is bound")
			}
			if !dialRefused(spare) {
				t.Errorf("%s accepts connections: a socket bound for the refused config was not closed", spare)
			}
		})
	}
	// A good config after refused ones is accepted and clears LastError.
	reload(t, gw, good)
	if le := gw.LastError(); le != nil {
		t.Errorf("LastError = %+v after an accepted config; want nil", le)
	}
	if got := gw.Engine().Table().Version; got != table.Version+1 {
		t.Errorf("version %d after one accepted reload; want %d", got, table.Version+1)
	}
}

// TestListenersAcrossReloads adds, removes, moves and renames listeners across reloads.
func TestListenersAcrossReloads(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case arrived <- struct{}{}:
			default:
			}
			select {
			case <-time.After(700 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		echoHandler("up").ServeHTTP(w, r)
	})
	up := startUpstream(t, "up", upstreamOptions{Handler: slow})
	cfg := func(listeners string) string {
		named := ""
		if strings.Contains(listeners, "name: renamed") {
			named = `  - name: named
    listeners: [renamed]
    match: [{path: {exact: /named}}]
    filters: [{respond: {status: 200, body: renamed}}]
`
		}
		return configHead + "listeners:\n" + listeners + "routes:\n" + named + fmt.Sprintf(`  - name: all
    backends: [{service: up}]
services:
  - name: up
    endpoints: [{address: %q}]
`, up.Addr)
	}
	client := newClient(t)
	ok := func(t *testing.T, addr, what string) {
		t.Helper()
		r := get(t, client, "http://"+addr+"/x")
		if r.Status != 200 || r.Echo == nil {
			t.Fatalf("%s (%s): status %d reason %q; want 200 from the upstream", what, addr, r.Status, r.reason())
		}
	}

	gw := startGateway(t, cfg(`  - {name: keep, address: "127.0.0.1:0"}
  - {name: gone, address: "127.0.0.1:0"}
`))
	keepAddr := listenerAddr(t, gw, "keep")
	goneAddr := listenerAddr(t, gw, "gone")
	ok(t, keepAddr, "keep")
	ok(t, goneAddr, "gone")

	// A slow request in flight on "gone" while it is removed must complete.
	type outcome struct {
		r   *result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, err := client.Get("http://" + goneAddr + "/slow")
		if err != nil {
			done <- outcome{err: err}
			return
		}
		r, err := readResult(resp)
		done <- outcome{r: r, err: err}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow request never reached the upstream")
	}

	// Reload 2: "gone" removed, "added" new.
	reload(t, gw, cfg(`  - {name: keep, address: "127.0.0.1:0"}
  - {name: added, address: "127.0.0.1:0"}
`))
	if gw.Addr("gone") != nil {
		t.Error(`Addr("gone") is still set after its removal`)
	}
	if !dialRefused(goneAddr) {
		t.Errorf("removed listener %s still accepts connections", goneAddr)
	}
	if got := listenerAddr(t, gw, "keep"); got != keepAddr {
		t.Errorf("kept listener moved from %s to %s", keepAddr, got)
	}
	ok(t, keepAddr, "keep after reload")
	ok(t, listenerAddr(t, gw, "added"), "added")
	select {
	case o := <-done:
		if o.err != nil {
			t.Errorf("in-flight request on the removed listener failed: %v", o.err)
		} else if o.r.Status != 200 || o.r.Echo == nil {
			t.Errorf("in-flight request on the removed listener: status %d reason %q; want 200", o.r.Status, o.r.reason())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight request on the removed listener never completed")
	}

	// Reload 3: "keep" moves to a fixed address.
	moved := freeAddr(t)
	reload(t, gw, cfg(fmt.Sprintf(`  - {name: keep, address: %q}
  - {name: added, address: "127.0.0.1:0"}
`, moved)))
	if got := listenerAddr(t, gw, "keep"); got != moved {
		t.Errorf(`Addr("keep") = %s after the move; want %s`, got, moved)
	}
	ok(t, moved, "keep at its new address")
	if !dialRefused(keepAddr) {
		t.Errorf("old address %s of the moved listener still accepts connections", keepAddr)
	}

	// Reload 4: "keep" is renamed "renamed" on the same address; routes for the new name apply.
	reload(t, gw, cfg(fmt.Sprintf(`  - {name: renamed, address: %q}
  - {name: added, address: "127.0.0.1:0"}
`, moved)))
	if gw.Addr("keep") != nil {
		t.Error(`Addr("keep") is still set after the rename`)
	}
	if got := listenerAddr(t, gw, "renamed"); got != moved {
		t.Errorf(`Addr("renamed") = %s; want %s`, got, moved)
	}
	ok(t, moved, "renamed listener")
	if r := get(t, client, "http://"+moved+"/named"); r.Status != 200 || string(r.Body) != "renamed" {
		t.Errorf("route bound to the new listener name: status %d body %q; want 200 %q", r.Status, r.Body, "renamed")
	}
	if r := get(t, client, baseURL(t, gw, "added")+"/named"); r.Status == 200 && string(r.Body) == "renamed" {
		t.Error(`a route bound to listener "renamed" answered on listener "added"`)
	}

	// Reload 5 and 6: two listeners on fixed addresses swap them.
	other := freeAddr(t)
	reload(t, gw, cfg(fmt.Sprintf(`  - {name: renamed, address: %q}
  - {name: added, address: %q}
`, moved, other)))
	ok(t, other, "added at a fixed address")
	reload(t, gw, cfg(fmt.Sprintf(`  - {name: renamed, address: %q}
  - {name: added, address: %q}
`, other, moved)))
	if a, b := gw.Addr("renamed"), gw.Addr("added"); a == nil || b == nil || a.String() != other || b.String() != moved {
		t.Fatalf("after the swap: renamed at %v, added at %v; want %s and %s", a, b, other, moved)
	}
	ok(t, moved, "added after the swap")
	ok(t, other, "renamed after the swap")
	if r := get(t, client, "http://"+other+"/named"); r.Status != 200 || string(r.Body) != "renamed" {
		t.Errorf("after the swap, listener renamed: status %d body %q; want 200 %q", r.Status, r.Body, "renamed")
	}
	if r := get(t, client, "http://"+moved+"/named"); r.Status == 200 && string(r.Body) == "renamed" {
		t.Error(`after the swap, a route bound to listener "renamed" answered on listener "added"`)
	}
}
