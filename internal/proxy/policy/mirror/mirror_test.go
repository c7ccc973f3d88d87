package mirror

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// TestMain fails the package when a copy's goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// shadowCall is what the shadow service received in one copy.
type shadowCall struct {
	req      httpmsg.Request
	body     []byte
	hasBody  bool
	deadline time.Time
	err      error
}

// shadowService records the copies it is sent. Each copy first waits for gate, when set.
type shadowService struct {
	mu    sync.Mutex
	calls []shadowCall
	gate  chan struct{}
	fail  error
	panic bool
}

func (s *shadowService) Serve(x *proxy.Exchange) error {
	if s.gate != nil {
		<-s.gate
	}
	if s.panic {
		panic("shadow exploded")
	}
	c := shadowCall{req: x.Req, deadline: x.Deadline}
	if x.Body != nil {
		c.hasBody = true
		c.body, c.err = io.ReadAll(x.Body)
	}
	// Answer like an upstream would, through the copy's writer.
	_ = x.W.WriteHead(&httpmsg.Response{Status: 100})
	if x.W.HeadWritten() {
		c.err = errors.New("a 1xx head counted as the final head")
	}
	_ = x.W.WriteHead(&httpmsg.Response{Status: 500, ContentLength: 4})
	_, _ = x.W.Write([]byte("oops"))
	_ = x.W.Flush()
	_ = x.W.Finish(httpmsg.Header{{Name: "Grpc-Status", Value: "13"}})
	if !x.W.HeadWritten() {
		c.err = errors.New("HeadWritten is false after WriteHead")
	}
	if _, _, err := x.W.Hijack(); err == nil {
		c.err = errors.New("Hijack succeeded")
	}
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	return s.fail
}

func (s *shadowService) get() []shadowCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shadowCall(nil), s.calls...)
}

// origin is the route's next handler: it reads the whole body, as an upstream transport does.
type origin struct {
	body    []byte
	err     error
	hits    int
	noRead  bool
	wrapped io.Reader // the body it was given
}

func (o *origin) Serve(x *proxy.Exchange) error {
	o.hits++
	o.wrapped = x.Body
	if x.Body != nil && !o.noRead {
		o.body, o.err = io.ReadAll(x.Body)
	}
	x.Status = 200
	return nil
}

func policy(percent float64, maxBody, maxInFlight int) *config.MirrorPolicy {
	return &config.MirrorPolicy{Service: "shadow", Percent: percent, MaxBodyBytes: maxBody, MaxInFlight: maxInFlight}
}

func request(method string, body io.Reader, length int64) *proxy.Exchange {
	return &proxy.Exchange{
		Req: httpmsg.Request{
			Method: method, Target: "/api/v1?x=1", Path: "/api/v1", Query: "x=1", Host: "api.example.com:8080",
			Proto: httpmsg.HTTP11, ContentLength: length, Chunked: length < 0,
			Header: httpmsg.Header{{Name: "X-Request-Id", Value: "id-1"}, {Name: "Content-Type", Value: "text/plain"}},
		},
		Body: body, ID: "id-1", Route: "r", Listener: "public", Scheme: "http",
		Start: time.Now(), Deadline: time.Now().Add(10 * time.Second),
	}
}

// settle waits until m has no copy in flight.
func settle(t *testing.T, m *mirror) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for m.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d copies still in flight", m.inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// results returns the counts by result.
func results(t *testing.T, m *mirror) map[string]float64 {
	t.Helper()
	return map[string]float64{
		ResultSent: counterValue(t, m.sent), ResultFailed: counterValue(t, m.failed),
		ResultDropped: counterValue(t, m.dropped), ResultSkipped: counterValue(t, m.skipped),
	}
}

func checkResults(t *testing.T, m *mirror, sent, failed, dropped, skipped float64) {
	t.Helper()
	want := map[string]float64{ResultSent: sent, ResultFailed: failed, ResultDropped: dropped, ResultSkipped: skipped}
	if got := results(t, m); !mapsEqual(got, want) {
		t.Errorf("results %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func newTestMirror(p *config.MirrorPolicy, send proxy.Handler) *mirror {
	return newMirror("r", p, send, NewMetrics(prometheus.NewRegistry()), nil, rand.Float64)
}

// TestCopyOfADeclaredBody: the copy carries the same bytes, its own header and the shadow host;
// the original reads the body intact.
func TestCopyOfADeclaredBody(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: exactly the limit
	shadow := &shadowService{}
	m := newTestMirror(policy(100, len(body), 10), shadow)
	x := request("POST", bytes.NewReader(body), int64(len(body)))
	deadline := x.Deadline
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	// Changing the original's head afterwards must not touch the copy's.
	x.Req.Header[1].Value = "changed"
	x.Req.Header.Set("X-Added", "1")
	settle(t, m)
	if o.err != nil || !bytes.Equal(o.body, body) {
		t.Fatalf("original body: %d bytes, err %v; want the %d bytes sent", len(o.body), o.err, len(body))
	}
	calls := shadow.get()
	if len(calls) != 1 {
		t.Fatalf("%d copies, want 1", len(calls))
	}
	c := calls[0]
	if c.err != nil || !c.hasBody || !bytes.Equal(c.body, body) {
		t.Fatalf("copy body: %d bytes, err %v; want the same %d bytes", len(c.body), c.err, len(body))
	}
	r := c.req
	if r.Method != "POST" || r.Path != "/api/v1" || r.Query != "x=1" || r.Target != "/api/v1?x=1" ||
		r.Host != "api.example.com-shadow:8080" || r.ContentLength != int64(len(body)) || r.Chunked || r.Proto != httpmsg.HTTP11 {
		t.Errorf("copy head %+v", r)
	}
	if got := r.Header.Value("Content-Type"); got != "text/plain" || r.Header.Has("X-Added") || r.Header.Value("X-Request-Id") != "id-1" {
		t.Errorf("copy header %v: want the original's fields as they were", r.Header)
	}
	if !c.deadline.Equal(deadline) {
		t.Errorf("copy deadline %v, want the original's %v", c.deadline, deadline)
	}
	checkResults(t, m, 1, 0, 0, 0)
}

func TestCopyWithoutBody(t *testing.T) {
	shadow := &shadowService{}
	m := newTestMirror(policy(100, 10, 10), shadow)
	x := request("GET", nil, 0)
	x.Deadline = time.Time{}
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil || o.hits != 1 {
		t.Fatalf("err %v hits %d", err, o.hits)
	}
	settle(t, m)
	calls := shadow.get()
	if len(calls) != 1 || calls[0].hasBody || calls[0].req.ContentLength != 0 {
		t.Fatalf("copies %+v, want one without a body", calls)
	}
	if left := time.Until(calls[0].deadline); left <= 0 || left > DefaultShadowTimeout {
		t.Errorf("copy of a request without deadline has deadline in %v, want within %v", left, DefaultShadowTimeout)
	}
	checkResults(t, m, 1, 0, 0, 0)
}

// TestCopyOfAChunkedBody: a body of unknown length streams through and is copied when it ends
// within the limit.
func TestCopyOfAChunkedBody(t *testing.T) {
	body := []byte(strings.Repeat("chunk-", 1000))
	shadow := &shadowService{}
	m := newTestMirror(policy(100, len(body), 10), shadow)
	x := request("PUT", iotest.OneByteReader(bytes.NewReader(body)), -1)
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	settle(t, m)
	if !bytes.Equal(o.body, body) {
		t.Fatalf("original body %d bytes, want %d", len(o.body), len(body))
	}
	if !x.Req.Chunked || x.Req.ContentLength != -1 {
		t.Errorf("original framing changed: chunked %v length %d", x.Req.Chunked, x.Req.ContentLength)
	}
	calls := shadow.get()
	if len(calls) != 1 || !bytes.Equal(calls[0].body, body) {
		t.Fatalf("%d copies; want one with the same body", len(calls))
	}
	if r := calls[0].req; r.Chunked || r.ContentLength != int64(len(body)) {
		t.Errorf("copy framing: chunked %v length %d; want a declared length", r.Chunked, r.ContentLength)
	}
	checkResults(t, m, 1, 0, 0, 0)

	// An empty chunked body is copied as an empty body.
	x = request("POST", bytes.NewReader(nil), -1)
	if err := m.middleware(&origin{}).Serve(x); err != nil {
		t.Fatal(err)
	}
	settle(t, m)
	if calls := shadow.get(); len(calls) != 2 || !calls[1].hasBody || len(calls[1].body) != 0 || calls[1].req.ContentLength != 0 {
		t.Errorf("copy of an empty chunked body: %+v", calls[len(calls)-1])
	}
}

// TestNoCopyOfLargeBodies: a body over the limit is not copied and reaches the upstream intact.
func TestNoCopyOfLargeBodies(t *testing.T) {
	body := []byte(strings.Repeat("x", 1001))
	shadow := &shadowService{}
	m := newTestMirror(policy(100, 1000, 10), shadow)

	// Declared length: the body is not even read by the policy.
	r := bytes.NewReader(body)
	x := request("POST", r, int64(len(body)))
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	if o.wrapped != io.Reader(r) || !bytes.Equal(o.body, body) {
		t.Error("a declared body over the limit did not reach the upstream untouched")
	}

	// Unknown length: streams through, then turns out too long.
	x = request("POST", iotest.HalfReader(bytes.NewReader(body)), -1)
	o = &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(o.body, body) {
		t.Errorf("chunked body over the limit: upstream got %d bytes, want %d", len(o.body), len(body))
	}
	settle(t, m)
	if n := len(shadow.get()); n != 0 {
		t.Errorf("%d copies of bodies over the limit, want 0", n)
	}
	checkResults(t, m, 0, 0, 0, 2)
}

// TestNoCopyOfUnfinishedBodies: an exchange that ends before its chunked body did is not copied,
// and a body shorter than declared reaches the upstream as it was, error included.
func TestNoCopyOfUnfinishedBodies(t *testing.T) {
	shadow := &shadowService{}
	m := newTestMirror(policy(100, 1000, 10), shadow)
	x := request("POST", strings.NewReader("never read"), -1)
	if err := m.middleware(&origin{noRead: true}).Serve(x); err != nil {
		t.Fatal(err)
	}
	// Reading the rest later changes nothing.
	_, _ = io.ReadAll(x.Body)

	x = request("POST", strings.NewReader("short"), 10)
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	if string(o.body) != "short" || !errors.Is(o.err, io.ErrUnexpectedEOF) {
		t.Errorf("short body: upstream read %q, %v; want \"short\" then io.ErrUnexpectedEOF", o.body, o.err)
	}
	boom := errors.New("boom")
	x = request("POST", io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)), 10)
	o = &origin{}
	if err := m.middleware(o).Serve(x); err != nil {
		t.Fatal(err)
	}
	if string(o.body) != "abc" || !errors.Is(o.err, boom) {
		t.Errorf("failing body: upstream read %q, %v; want \"abc\" then the read error", o.body, o.err)
	}
	settle(t, m)
	if n := len(shadow.get()); n != 0 {
		t.Errorf("%d copies, want 0", n)
	}
	checkResults(t, m, 0, 0, 0, 3)
}

func TestNoCopyOfUpgrades(t *testing.T) {
	shadow := &shadowService{}
	m := newTestMirror(policy(100, 1000, 10), shadow)
	x := request("GET", nil, 0)
	x.Req.Upgrade = "websocket"
	o := &origin{}
	if err := m.middleware(o).Serve(x); err != nil || o.hits != 1 {
		t.Fatalf("err %v hits %d", err, o.hits)
	}
	settle(t, m)
	checkResults(t, m, 0, 0, 0, 1)
}

// TestDroppedBeyondMaxInFlight: with the shadow stuck, copies beyond MaxInFlight are dropped
// and the clients never wait.
func TestDroppedBeyondMaxInFlight(t *testing.T) {
	shadow := &shadowService{gate: make(chan struct{})}
	m := newTestMirror(policy(100, 1000, 3), shadow)
	start := time.Now()
	for i := 0; i < 10; i++ {
		o := &origin{}
		if err := m.middleware(o).Serve(request("POST", strings.NewReader("hello"), 5)); err != nil || string(o.body) != "hello" {
			t.Fatalf("request %d: err %v body %q", i, err, o.body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10 requests took %v with the shadow stuck; they must not wait for it", d)
	}
	if n := m.inFlight.Load(); n != 3 {
		t.Errorf("%d copies in flight, want 3", n)
	}
	close(shadow.gate)
	settle(t, m)
	if n := len(shadow.get()); n != 3 {
		t.Errorf("%d copies arrived, want 3", n)
	}
	checkResults(t, m, 3, 0, 7, 0)

	// Slots free up again.
	if err := m.middleware(&origin{}).Serve(request("GET", nil, 0)); err != nil {
		t.Fatal(err)
	}
	settle(t, m)
	checkResults(t, m, 4, 0, 7, 0)
}

// TestShadowFailuresStayInTheShadow: errors and panics of the shadow reach neither the client nor
// the process.
func TestShadowFailuresStayInTheShadow(t *testing.T) {
	shadow := &shadowService{fail: proxy.Fail(503, proxy.ReasonUpstreamUnavailable, errors.New("refused"))}
	m := newTestMirror(policy(100, 1000, 10), shadow)
	x := request("GET", nil, 0)
	if err := m.middleware(&origin{}).Serve(x); err != nil || x.Status != 200 {
		t.Fatalf("err %v status %d", err, x.Status)
	}
	settle(t, m)
	checkResults(t, m, 0, 1, 0, 0)

	panicky := newTestMirror(policy(100, 1000, 10), &shadowService{panic: true})
	if err := panicky.middleware(&origin{}).Serve(request("GET", nil, 0)); err != nil {
		t.Fatal(err)
	}
	settle(t, panicky)
	checkResults(t, panicky, 0, 1, 0, 0)
}

// TestSampling: over 10000 requests the share copied is within 2 points of the percentage (more
// than 4 standard deviations), and 0 copies nothing.
func TestSampling(t *testing.T) {
	for _, percent := range []float64{0, 25, 50, 99.5, 100} {
		var copies atomic.Int64
		send := proxy.HandlerFunc(func(*proxy.Exchange) error { copies.Add(1); return nil })
		rng := rand.New(rand.NewPCG(7, 11))
		m := newMirror("r", policy(percent, 10, 100000), send, NewMetrics(prometheus.NewRegistry()), nil, rng.Float64)
		const n = 10000
		h := m.middleware(&origin{})
		for i := 0; i < n; i++ {
			if err := h.Serve(request("GET", nil, 0)); err != nil {
				t.Fatal(err)
			}
		}
		settle(t, m)
		share := float64(copies.Load()) / n * 100
		if (percent == 0 || percent == 100) && share != percent || share < percent-2 || share > percent+2 {
			t.Errorf("percent %v: copied %v%% of requests", percent, share)
		}
	}
}

func TestShadowHost(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"api.example.com":      "api.example.com-shadow",
		"api.example.com:8080": "api.example.com-shadow:8080",
		"127.0.0.1:80":         "127.0.0.1-shadow:80",
		"[::1]:8443":           "[::1]-shadow:8443",
		"[::1]":                "[::1]-shadow",
		"Example.ORG":          "Example.ORG-shadow",
	} {
		if got := ShadowHost(in); got != want {
			t.Errorf("ShadowHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMetrics: registering twice on one registry shares the collector, and the names lint clean.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.requests.WithLabelValues("r", ResultSent).Inc()
	b.requests.WithLabelValues("r", ResultSent).Inc()
	if got := counterValue(t, a.requests.WithLabelValues("r", ResultSent)); got != 2 {
		t.Errorf("sent = %v, want 2 (one collector)", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "meshgate_mirror_requests_total" {
		t.Fatalf("gathered %v", mfs)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestBodyReadOnAnotherGoroutine: an HTTP/2 transport reads the request body on a goroutine of
// its own, which may still run when the exchange returns. The request is then either copied or
// skipped, exactly once.
func TestBodyReadOnAnotherGoroutine(t *testing.T) {
	shadow := &shadowService{}
	m := newTestMirror(policy(100, 1000, 10), shadow)
	const n = 200
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		x := request("POST", strings.NewReader("streamed"), -1)
		next := proxy.HandlerFunc(func(x *proxy.Exchange) error {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.ReadAll(x.Body)
			}()
			return nil
		})
		if err := m.middleware(next).Serve(x); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	settle(t, m)
	got := results(t, m)
	if got[ResultSent]+got[ResultSkipped] != n || got[ResultFailed]+got[ResultDropped] != 0 {
		t.Errorf("results %v, want %d sent or skipped", got, n)
	}
	for _, c := range shadow.get() {
		if string(c.body) != "streamed" {
			t.Errorf("copy body %q", c.body)
		}
	}
}

// TestNew: the exported constructor copies requests through send.
func TestNew(t *testing.T) {
	shadow := &shadowService{}
	reg := prometheus.NewRegistry()
	mw := New("r", policy(100, 1000, 10), shadow, NewMetrics(reg), nil)
	if err := mw(&origin{}).Serve(request("GET", nil, 0)); err != nil {
		t.Fatal(err)
	}
	waitCopies := time.Now().Add(5 * time.Second)
	for len(shadow.get()) != 1 {
		if time.Now().After(waitCopies) {
			t.Fatal("no copy arrived")
		}
		time.Sleep(time.Millisecond)
	}
	// The counter is bumped after the shadow answered; give it a moment.
	for {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(mfs) == 1 && sentValue(mfs[0]) == 1 {
			break
		}
		if time.Now().After(waitCopies) {
			t.Fatalf("metric not counted: %v", mfs)
		}
		time.Sleep(time.Millisecond)
	}
}

// sentValue returns the count of result "sent" in a gathered family.
func sentValue(mf *dto.MetricFamily) float64 {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" && l.GetValue() == ResultSent {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// BenchmarkMirror measures the cost on the client's path: a request sampled out, and one copied
// (a 1 KiB body, the copy sent to a shadow that answers at once).
func BenchmarkMirror(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	send := proxy.HandlerFunc(func(x *proxy.Exchange) error {
		if x.Body != nil {
			_, _ = io.Copy(io.Discard, x.Body)
		}
		return nil
	})
	for _, tc := range []struct {
		name    string
		percent float64
	}{{"sampled out", 0.0001}, {"copied", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			m := newMirror("r", policy(tc.percent, 4096, 1<<20), send, NewMetrics(prometheus.NewRegistry()), nil, rand.Float64)
			h := m.middleware(proxy.HandlerFunc(func(x *proxy.Exchange) error {
				_, _ = io.Copy(io.Discard, x.Body)
				return nil
			}))
			rd := bytes.NewReader(body)
			x := request("POST", rd, int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				x.Body = rd
				_ = h.Serve(x)
			}
			b.StopTimer()
			deadline := time.Now().Add(5 * time.Second)
			for m.inFlight.Load() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		})
	}
}
