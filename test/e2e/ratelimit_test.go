package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// redisProcess is a redis-server child process on a loopback port, without persistence.
type redisProcess struct {
	*Process
	// Addr is the host:port it listens on.
	Addr string
}

// startRedis starts redis-server on a free loopback port and waits until it answers PING. The test
// fails when redis-server is not installed.
func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run scripts/test-deps")
	}
	for range 3 { // another process may take the port between finding and binding it
		addr := freeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		p := startProcess(t, "redis-server", bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		r := &redisProcess{Process: p, Addr: addr}
		if pollUntil(5*time.Second, func() bool { return p.exited() || redisPing(addr) }) && !p.exited() {
			return r
		}
		p.stop()
	}
	t.Fatal("redis-server did not answer PING")
	return nil
}

// redisPing reports whether the Redis server at addr answers PING.
func redisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// kill kills the server at once (SIGKILL) and waits for it to exit.
func (r *redisProcess) kill(t *testing.T) {
	t.Helper()
	r.signal(syscall.SIGKILL)
	if _, ok := r.wait(stopTimeout); !ok {
		t.Fatal("redis-server did not exit after SIGKILL")
	}
}

// rateLimitConfig is two rate-limited routes in front of one upstream: /global shares 100 requests
// per second (burst 50) through Redis and answers 503 when Redis cannot answer; /open has a
// generous global limit that admits when Redis cannot answer. The burst covers the machine
// stalling the gateways for up to half a second: a limiter loses the tokens of a pause longer than
// burst/rate in which no request reaches it.
const rateLimitConfig = `
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: "off"}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: global
    match: [{path: {prefix: /global}}]
    rateLimit:
      global: {redis: "{{REDIS}}", rate: 100, burst: 50, timeout: 200ms}
    backends: [{service: app}]
  - name: open
    match: [{path: {prefix: /open}}]
    rateLimit:
      global: {redis: "{{REDIS}}", rate: 100000, burst: 100000, timeout: 50ms, failOpen: true}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`

// rateLimitState matches the RateLimit field.
var rateLimitState = regexp.MustCompile(`^"default";r=\d+;t=\d+$`)

// TestRateLimitGlobal runs two meshgate processes sharing one Redis: under a bounded load over
// many connections to both, they together admit the global limit within 5%; refusals say when to
// come back; killing Redis makes the fail-open route admit and the fail-closed one answer 503, at
// once.
func TestRateLimitGlobal(t *testing.T) {
	redis := startRedis(t)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	var gateways []string
	for range 2 {
		admin, public := freeAddr(t), freeAddr(t)
		startGateway(t, admin, fill(rateLimitConfig, "ADMIN", admin, "PUBLIC", public, "REDIS", redis.Addr, "UP", up))
		gateways = append(gateways, public)
	}

	const (
		rate, burst = 100, 50
		connsPer    = 16
		span        = 4 * time.Second
	)
	var (
		admitted, limited, other atomic.Int64
		first429, first200       atomic.Pointer[http.Response]
		wg                       sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(span)
	for _, gw := range gateways {
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: connsPer, ResponseHeaderTimeout: requestTimeout}
		t.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr, Timeout: requestTimeout}
		for range connsPer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; n < 200000 && time.Now().Before(stop); n++ {
					resp, err := client.Get("http://" + gw + "/global/x")
					if err != nil {
						other.Add(1)
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						admitted.Add(1)
						first200.CompareAndSwap(nil, resp)
					case 429:
						limited.Add(1)
						first429.CompareAndSwap(nil, resp)
					default:
						other.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	// Requests were sent until stop; those still in flight then end within a few milliseconds.
	elapsed := min(time.Since(start), span)
	want := burst + rate*elapsed.Seconds()
	got := float64(admitted.Load())
	t.Logf("admitted %.0f, limited %d, other %d in %v over %d connections: %.1f%% of the limit %.0f",
		got, limited.Load(), other.Load(), elapsed, 2*connsPer, 100*got/want, want)
	if got < want*0.95 || got > want*1.05 {
		t.Errorf("two gateways admitted %.0f, want %.0f within 5%%", got, want)
	}
	if other.Load() != 0 {
		t.Errorf("%d requests failed or got a status other than 200 and 429", other.Load())
	}

	if r := first429.Load(); r == nil {
		t.Error("no request was refused")
	} else {
		h := r.Header
		if h.Get("X-Meshgate-Reason") != "rate_limited" {
			t.Errorf("429 reason %q, want rate_limited", h.Get("X-Meshgate-Reason"))
		}
		if n, err := strconv.Atoi(h.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("429 Retry-After %q, want whole seconds, at least 1", h.Get("Retry-After"))
		}
		if got := h.Get("RateLimit-Policy"); got != `"default";q=50;w=1` {
			t.Errorf(`429 RateLimit-Policy %q, want "default";q=50;w=1`, got)
		}
		if got := h.Get("RateLimit"); !regexp.MustCompile(`^"default";r=0;t=\d+$`).MatchString(got) {
			t.Errorf(`429 RateLimit %q, want "default";r=0;t=<seconds>`, got)
		}
	}
	if r := first200.Load(); r == nil {
		t.Error("no request was admitted")
	} else if pol, st := r.Header.Get("RateLimit-Policy"), r.Header.Get("RateLimit"); pol != `"default";q=50;w=1` || !rateLimitState.MatchString(st) {
		t.Errorf("admitted response: RateLimit-Policy %q, RateLimit %q", pol, st)
	}

	// Without Redis, the fail-open route admits and the fail-closed one answers 503, promptly.
	// First the refusals the gateways remember run out (they last until Redis would admit again,
	// at most 1/rate after the load), so that every request below asks Redis.
	time.Sleep(300 * time.Millisecond)
	redis.kill(t)
	client := newHTTPClient()
	const prompt = time.Second
	longest := map[string]time.Duration{}
	for i := range 20 {
		for _, tc := range []struct {
			path   string
			status int
			reason string
		}{{"/open/x", 200, ""}, {"/global/x", 503, "rate_limit_unavailable"}} {
			begin := time.Now()
			resp, _ := httpGet(t, client, "http://"+gateways[i%2]+tc.path, nil)
			took := time.Since(begin)
			if resp.StatusCode != tc.status || resp.Header.Get("X-Meshgate-Reason") != tc.reason {
				t.Fatalf("Redis killed: GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"), tc.status, tc.reason)
			}
			if took > prompt {
				t.Fatalf("Redis killed: GET %s took %v, want under %v", tc.path, took, prompt)
			}
			longest[tc.path] = max(longest[tc.path], took)
		}
	}
	t.Logf("Redis killed: longest fail-open request %v, fail-closed %v", longest["/open/x"], longest["/global/x"])
}

// TestRateLimitHTTP2Burst sends 100 requests at once as streams of one HTTP/2 connection: a local
// limit with a burst of 20 admits 20 of them, not more.
func TestRateLimitHTTP2Burst(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: "off"}
listeners:
  - {name: h2c, address: "{{PUBLIC}}", protocol: h2c}
routes:
  - name: local
    rateLimit:
      local: {rate: 0.5, burst: 20, maxKeys: 1000}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Proxy: nil, Protocols: h2c, ResponseHeaderTimeout: requestTimeout}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: requestTimeout}
	// One request first, so that the other 99 find the connection up and multiplex on it.
	resp, _ := httpGet(t, client, "http://"+public+"/", nil)
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("first request: %d over HTTP/%d.%d, want 200 over HTTP/2", resp.StatusCode, resp.ProtoMajor, resp.ProtoMinor)
	}

	const streams = 100
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		conns    = map[string]bool{}
		wg       sync.WaitGroup
	)
	ready := make(chan struct{})
	start := time.Now()
	for range streams - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
				mu.Lock()
				conns[info.Conn.LocalAddr().String()] = true
				mu.Unlock()
			}}
			ctx := httptrace.WithClientTrace(ctxTimeout(t, requestTimeout), trace)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+public+"/", nil)
			if err != nil {
				t.Error(err)
				return
			}
			<-ready
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			mu.Lock()
			statuses[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	close(ready)
	wg.Wait()
	elapsed := time.Since(start)
	// The first request took one token; the bucket refills at 0.5 per second meanwhile.
	maxAdmitted := 20 - 1 + int(0.5*elapsed.Seconds()+1)
	t.Logf("%d streams on %d connection(s) in %v: %v", streams-1, len(conns), elapsed, statuses)
	if statuses[200] < 19 || statuses[200] > maxAdmitted || statuses[200]+statuses[429] != streams-1 {
		t.Errorf("statuses %v, want 19..%d admitted and the rest 429", statuses, maxAdmitted)
	}
	if len(conns) != 1 {
		t.Errorf("the streams used %d connections, want 1", len(conns))
	}
}
