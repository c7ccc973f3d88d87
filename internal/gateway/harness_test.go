package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/testport"
)

// TestMain fails the package when any test leaves a goroutine behind: every gateway, upstream
// and client a test starts must be stopped by the time the tests end. No goroutine is ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// configHead is the start of every test config: no admin listener (the gateway does not run one,
// but validation reserves its address) and no access log on stdout.
const configHead = `version: 1
admin: {address: "off"}
accessLog: {path: "off"}
`

// testLogger returns the logger gateways under test use. Logs are discarded unless
// MESHGATE_TEST_LOG is set, in which case they go to stderr at debug level.
func testLogger() *slog.Logger {
	if os.Getenv("MESHGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startGateway returns a gateway running the config yaml, which must be accepted. The gateway is
// shut down when the test ends.
func startGateway(t testing.TB, yaml string) *gateway.Gateway {
	t.Helper()
	gw := gateway.New(testLogger(), metrics.New())
	t.Cleanup(func() { shutdownGateway(t, gw) })
	if _, err := gw.LoadBytes("test.yaml", []byte(yaml)); err != nil {
		t.Fatalf("initial config refused: %v\nconfig:\n%s", err, yaml)
	}
	return gw
}

// shutdownGateway shuts gw down, allowing exchanges ten seconds to finish. Shutting a gateway down
// twice is allowed. A Shutdown that has not returned five seconds after its deadline fails the
// test with the stacks of the gateway's goroutines, instead of hanging the whole package.
func shutdownGateway(t testing.TB, gw *gateway.Gateway) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- gw.Shutdown(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("gateway Shutdown did not return; meshgate goroutines:\n%s", proxyStacks())
	}
}

// proxyStacks returns the stacks of the goroutines running meshgate's proxy code.
func proxyStacks() string {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "/internal/proxy/") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// reload applies yaml to gw and fails the test when it is refused.
func reload(t testing.TB, gw *gateway.Gateway, yaml string) {
	t.Helper()
	if _, err := gw.LoadBytes("test.yaml", []byte(yaml)); err != nil {
		t.Fatalf("config refused: %v\nconfig:\n%s", err, yaml)
	}
}

// listenerAddr returns the bound host:port of the named listener of gw.
func listenerAddr(t testing.TB, gw *gateway.Gateway, name string) string {
	t.Helper()
	a := gw.Addr(name)
	if a == nil {
		t.Fatalf("listener %q is not bound", name)
	}
	return a.String()
}

// baseURL returns "http://ADDR" for the named listener of gw.
func baseURL(t testing.TB, gw *gateway.Gateway, name string) string {
	t.Helper()
	return "http://" + listenerAddr(t, gw, name)
}

// freeAddr returns a loopback address with a port that is free now (see testport).
func freeAddr(t testing.TB) string {
	t.Helper()
	return testport.Addr(t)
}

// upstream is a real HTTP server on loopback that stands for one service endpoint.
type upstream struct {
	srv *httptest.Server
	// Name identifies the upstream in responses (X-Server header and echo body).
	Name string
	// Addr is the upstream's host:port.
	Addr string
	// NewConns counts TCP connections the upstream accepted.
	NewConns atomic.Int64
	// Hits counts requests other than health probes.
	Hits atomic.Int64
	// Healthy is what /healthz answers: 200 when true, 503 when false. It starts true.
	Healthy atomic.Bool
}

// upstreamOptions tune startUpstream.
type upstreamOptions struct {
	// H2C makes the upstream speak cleartext HTTP/2 with prior knowledge as well as HTTP/1.1.
	H2C bool
	// Handler replaces the echo handler for every path but /healthz.
	Handler http.Handler
	// IdleTimeout, when set, makes the upstream close keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxConcurrentStreams, when set, is the HTTP/2 stream limit the upstream advertises.
	MaxConcurrentStreams int
}

// startUpstream starts an upstream named name that answers /healthz according to its Healthy
// flag and everything else with echoHandler (or opts.Handler). It is closed when the test ends.
func startUpstream(t testing.TB, name string, opts upstreamOptions) *upstream {
	t.Helper()
	u := &upstream{Name: name}
	u.Healthy.Store(true)
	h := opts.Handler
	if h == nil {
		h = echoHandler(name)
	}
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if u.Healthy.Load() {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		u.Hits.Add(1)
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.NewConns.Add(1)
		}
	}
	srv.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	srv.Config.IdleTimeout = opts.IdleTimeout
	if opts.H2C {
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetHTTP1(true)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		if opts.MaxConcurrentStreams > 0 {
			srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: opts.MaxConcurrentStreams}
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u.srv = srv
	u.Addr = srv.Listener.Addr().String()
	return u
}

// echo is what echoHandler answers: what the upstream received.
type echo struct {
	Server        string      `json:"server"`
	Method        string      `json:"method"`
	URI           string      `json:"uri"`
	Host          string      `json:"host"`
	ProtoMajor    int         `json:"protoMajor"`
	Header        http.Header `json:"header"`
	ContentLength int64       `json:"contentLength"`
	Chunked       bool        `json:"chunked"`
	BodyLen       int64       `json:"bodyLen"`
	BodySHA256    string      `json:"bodySha256"`
}

// bigBodySize is the size of the body echoHandler sends for /big.
const bigBodySize = 5 << 20

// echoHandler answers with the JSON of what it received (see echo), with the X-Server header set
// to name and two extra headers (X-Upstream-Remove, X-Upstream-Keep) for response filters to act
// on. Special requests:
//   - query "delay=DURATION" waits that long first (or until the client goes away);
//   - path "/big" answers with bigBodySize bytes of bigBody;
//   - path "/broken" declares 1000 bytes, sends 100 and closes the connection;
//   - path "/bighead" answers with a 20 kB header field.
func echoHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, err := time.ParseDuration(r.URL.Query().Get("delay")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Server", name)
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(bigBodySize))
			_, _ = w.Write(bigBody())
			return
		case "/bighead":
			w.Header().Set("X-Big", strings.Repeat("b", 20000))
			w.WriteHeader(http.StatusOK)
			return
		case "/broken":
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(strings.Repeat("x", 100)))
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					_ = c.Close()
				}
			}
			return
		}
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		e := echo{
			Server: name, Method: r.Method, URI: r.RequestURI, Host: r.Host, ProtoMajor: r.ProtoMajor,
			Header: r.Header, ContentLength: r.ContentLength, BodyLen: n,
			BodySHA256: hex.EncodeToString(h.Sum(nil)),
		}
		for _, te := range r.TransferEncoding {
			if te == "chunked" {
				e.Chunked = true
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream-Remove", "remove-me")
		w.Header().Set("X-Upstream-Keep", "keep-me")
		_ = json.NewEncoder(w).Encode(&e)
	})
}

// bigBody returns bigBodySize deterministic bytes.
func bigBody() []byte {
	b := make([]byte, bigBodySize)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

// sha256Hex returns the hex SHA-256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newClient returns an HTTP/1.1 client of its own that does not follow redirects and whose idle
// connections are closed when the test ends.
func newClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   false,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// result is a response read completely.
type result struct {
	Status int
	Header http.Header
	Body   []byte
	// Echo is the decoded body when the response came from echoHandler.
	Echo *echo
}

// reason returns the X-Meshgate-Reason header.
func (r *result) reason() string { return r.Header.Get("X-Meshgate-Reason") }

// readResult reads resp completely into a result and closes its body.
func readResult(resp *http.Response) (*result, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	r := &result{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if err != nil {
		return r, err
	}
	if resp.Header.Get("X-Server") != "" && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var e echo
		if err := json.Unmarshal(body, &e); err != nil {
			return r, fmt.Errorf("decoding echo: %w", err)
		}
		r.Echo = &e
	}
	return r, nil
}

// do sends req with c and reads the whole response.
func do(t testing.TB, c *http.Client, req *http.Request) *result {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	r, err := readResult(resp)
	if err != nil {
		t.Fatalf("%s %s: reading the response: %v", req.Method, req.URL, err)
	}
	return r
}

// get sends a GET to url with c and reads the whole response.
func get(t testing.TB, c *http.Client, url string) *result {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, c, req)
}

// rawExchange writes the raw HTTP/1.1 request text req to addr on a new connection and reads one
// response. It gives full control over the request line and header fields, which net/http's
// client would otherwise clean up.
func rawExchange(t testing.TB, addr, req string) *result {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("writing the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", firstLine(req), err)
	}
	r, err := readResult(resp)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", firstLine(req), err)
	}
	return r
}

// rawGet builds a raw GET request for target with a Host field, the given extra field lines
// ("Name: value") and "Connection: close".
func rawGet(target, host string, fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", target, host)
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// waitFor polls cond every 10ms until it holds or timeout passes, then fails the test with msg.
func waitFor(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue returns the value of the counter or gauge name with exactly the given labels in gw's
// registry, and whether it exists.
func metricValue(t testing.TB, gw *gateway.Gateway, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := gw.Metrics().Prom.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsEqual(m.GetLabel(), labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
	}
	return 0, false
}

func labelsEqual(got []*dto.LabelPair, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for _, lp := range got {
		if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
			return false
		}
	}
	return true
}

// dialRefused reports whether a TCP connection to addr is refused (or otherwise fails) at once.
func dialRefused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	_ = c.Close()
	return false
}

// isHex32 reports whether s is 32 lower-case hex digits.
func isHex32(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
