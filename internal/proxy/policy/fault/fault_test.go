package fault

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// recorder is a proxy.ResponseWriter that keeps what is written.
type recorder struct {
	resp     *httpmsg.Response
	body     strings.Builder
	finished bool
	trailer  httpmsg.Header
}

func (r *recorder) WriteHead(resp *httpmsg.Response) error {
	if r.resp != nil {
		return errors.New("head written twice")
	}
	c := *resp
	c.Header = resp.Header.Clone()
	r.resp = &c
	return nil
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.resp == nil {
		return 0, errors.New("write before head")
	}
	return r.body.Write(p)
}
func (r *recorder) Flush() error { return nil }
func (r *recorder) Finish(t httpmsg.Header) error {
	r.finished, r.trailer = true, t
	return nil
}
func (r *recorder) HeadWritten() bool { return r.resp != nil }
func (r *recorder) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrNotHijackable
}

// upstream is the next handler: it counts the requests that reach it and answers 200.
type upstream struct{ hits int }

func (u *upstream) Serve(x *proxy.Exchange) error {
	u.hits++
	x.Status = 200
	return nil
}

func newExchange(method string, header ...httpmsg.Field) (*proxy.Exchange, *recorder) {
	w := &recorder{}
	return &proxy.Exchange{Req: httpmsg.Request{Method: method, Header: header}, W: w, ID: "req-1", Route: "r"}, w
}

func mustInjector(t *testing.T, p *config.FaultPolicy, m *Metrics, random func() float64) *injector {
	t.Helper()
	inj, err := newInjector("r", p, m, random)
	if err != nil {
		t.Fatalf("newInjector: %v", err)
	}
	return inj
}

// TestSampling: over 10000 requests the share delayed and the share aborted are within 2 points
// of the configured percentages (more than 4 standard deviations), and 0 and 100 are exact.
func TestSampling(t *testing.T) {
	for _, tc := range []struct {
		delay, abort float64
	}{{30, 10}, {0, 100}, {100, 0}, {50, 50}, {1.5, 99}} {
		m := NewMetrics(prometheus.NewRegistry())
		rng := rand.New(rand.NewPCG(1, 2))
		inj := mustInjector(t, &config.FaultPolicy{
			Delay: &config.FaultDelay{Percent: tc.delay, Duration: time.Nanosecond},
			Abort: &config.FaultAbort{Percent: tc.abort, Status: 503},
		}, m, rng.Float64)
		const n = 10000
		up := &upstream{}
		h := inj.middleware(up)
		for i := 0; i < n; i++ {
			x, _ := newExchange("GET")
			_ = h.Serve(x)
		}
		delayed := counterValue(t, inj.delayed)
		aborted := counterValue(t, inj.aborted)
		check := func(what string, got, percent float64) {
			t.Helper()
			share := got / n * 100
			switch {
			case percent == 0 || percent == 100:
				if share != percent {
					t.Errorf("%s: %v%% of requests, want exactly %v%%", what, share, percent)
				}
			case share < percent-2 || share > percent+2:
				t.Errorf("%s: %v%% of requests, want %v%% ± 2", what, share, percent)
			}
		}
		check("delayed", delayed, tc.delay)
		check("aborted", aborted, tc.abort)
		if up.hits+int(aborted) != n {
			t.Errorf("%d requests reached the upstream and %v were aborted; want %d in all", up.hits, aborted, n)
		}
	}
}

func TestHeaderGatesInjection(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inj := mustInjector(t, &config.FaultPolicy{Header: "X-Chaos", Abort: &config.FaultAbort{Percent: 100, Status: 500}}, m, rand.Float64)
	up := &upstream{}
	h := inj.middleware(up)

	x, w := newExchange("GET", httpmsg.Field{Name: "X-Other", Value: "1"})
	if err := h.Serve(x); err != nil || up.hits != 1 || w.resp != nil {
		t.Fatalf("without the header: err %v, upstream hits %d, response %+v; want the request forwarded", err, up.hits, w.resp)
	}
	x, w = newExchange("GET", httpmsg.Field{Name: "x-chaos", Value: ""})
	if err := h.Serve(x); err != nil || up.hits != 1 || w.resp == nil || w.resp.Status != 500 {
		t.Fatalf("with the header (any case, empty value): err %v, upstream hits %d, response %+v; want 500", err, up.hits, w.resp)
	}
}

func TestAbortHTTP(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inj := mustInjector(t, &config.FaultPolicy{Abort: &config.FaultAbort{Percent: 100, Status: 503}}, m, rand.Float64)
	up := &upstream{}
	x, w := newExchange("GET")
	if err := inj.middleware(up).Serve(x); err != nil {
		t.Fatal(err)
	}
	if up.hits != 0 {
		t.Error("an aborted request reached the upstream")
	}
	if w.resp == nil || w.resp.Status != 503 || !w.finished {
		t.Fatalf("response %+v finished %v; want a finished 503", w.resp, w.finished)
	}
	for name, want := range map[string]string{
		"X-Meshgate-Reason": "fault_injected", "Content-Type": "text/plain; charset=utf-8",
		"X-Request-Id": "req-1", "Cache-Control": "no-store",
	} {
		if got := w.resp.Header.Value(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if w.body.String() != "503 fault_injected\n" || w.resp.ContentLength != int64(w.body.Len()) {
		t.Errorf("body %q with content-length %d", w.body.String(), w.resp.ContentLength)
	}
	if x.Status != 503 || x.Reason != ReasonFaultInjected {
		t.Errorf("exchange status %d reason %q", x.Status, x.Reason)
	}
	if got := counterValue(t, m.injected.WithLabelValues("r", KindAbort)); got != 1 {
		t.Errorf("aborts counted: %v, want 1", got)
	}

	// HEAD gets the head alone.
	x, w = newExchange("HEAD")
	if err := inj.middleware(up).Serve(x); err != nil {
		t.Fatal(err)
	}
	if w.body.Len() != 0 || w.resp.Status != 503 {
		t.Errorf("HEAD: status %d body %q", w.resp.Status, w.body.String())
	}
}

func TestAbortGRPCTrailersOnly(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for _, code := range []string{"unavailable", "UNAVAILABLE", "14"} {
		inj := mustInjector(t, &config.FaultPolicy{Abort: &config.FaultAbort{Percent: 100, GRPCStatus: code}}, m, rand.Float64)
		up := &upstream{}
		x, w := newExchange("POST", httpmsg.Field{Name: "Content-Type", Value: "application/grpc"})
		if err := inj.middleware(up).Serve(x); err != nil {
			t.Fatal(err)
		}
		if up.hits != 0 {
			t.Error("an aborted request reached the upstream")
		}
		if w.resp == nil || w.resp.Status != 200 || w.resp.ContentLength != 0 || w.body.Len() != 0 {
			t.Fatalf("%s: response %+v body %q; want 200 with no body", code, w.resp, w.body.String())
		}
		if !w.finished || w.trailer != nil {
			t.Errorf("%s: finished %v with trailer %v; want finished without trailers (trailers-only form)", code, w.finished, w.trailer)
		}
		for name, want := range map[string]string{
			"Content-Type": "application/grpc", "Grpc-Status": "14", "Grpc-Message": "fault injected",
			"X-Meshgate-Reason": "fault_injected", "X-Request-Id": "req-1",
		} {
			if got := w.resp.Header.Value(name); got != want {
				t.Errorf("%s: %s = %q, want %q", code, name, got, want)
			}
		}
		if x.Status != 200 || x.Reason != ReasonFaultInjected {
			t.Errorf("exchange status %d reason %q", x.Status, x.Reason)
		}
	}
}

func TestDelay(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inj := mustInjector(t, &config.FaultPolicy{Delay: &config.FaultDelay{Percent: 100, Duration: 50 * time.Millisecond}}, m, rand.Float64)
	up := &upstream{}
	x, _ := newExchange("GET")
	x.Deadline = time.Now().Add(5 * time.Second)
	start := time.Now()
	if err := inj.middleware(up).Serve(x); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Errorf("delayed %v, want 50ms", d)
	}
	if up.hits != 1 {
		t.Error("a delayed request did not reach the upstream")
	}
	if got := counterValue(t, m.injected.WithLabelValues("r", KindDelay)); got != 1 {
		t.Errorf("delays counted: %v, want 1", got)
	}
}

// TestDelayBoundedByDeadline: a delay longer than the time left ends at the deadline with 504.
func TestDelayBoundedByDeadline(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inj := mustInjector(t, &config.FaultPolicy{
		Delay: &config.FaultDelay{Percent: 100, Duration: time.Hour},
		Abort: &config.FaultAbort{Percent: 100, Status: 500},
	}, m, rand.Float64)
	for _, left := range []time.Duration{80 * time.Millisecond, -time.Second} {
		up := &upstream{}
		x, w := newExchange("GET")
		x.Deadline = time.Now().Add(left)
		start := time.Now()
		err := inj.middleware(up).Serve(x)
		took := time.Since(start)
		var pe *proxy.Error
		if !errors.As(err, &pe) || pe.Status != 504 || pe.Reason != proxy.ReasonUpstreamTimeout {
			t.Fatalf("deadline in %v: err %v, want 504 upstream_timeout", left, err)
		}
		if took < max(left, 0) || took > max(left, 0)+time.Second {
			t.Errorf("deadline in %v: returned after %v", left, took)
		}
		if up.hits != 0 || w.resp != nil {
			t.Errorf("deadline in %v: the request went on (upstream hits %d, response %+v)", left, up.hits, w.resp)
		}
	}
}

func TestDelayEndsWhenClientGoesAway(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	inj := mustInjector(t, &config.FaultPolicy{Delay: &config.FaultDelay{Percent: 100, Duration: time.Hour}}, m, rand.Float64)
	ctx, cancel := context.WithCancel(context.Background())
	x, _ := newExchange("GET")
	x.Ctx = ctx
	time.AfterFunc(30*time.Millisecond, cancel)
	up := &upstream{}
	start := time.Now()
	err := inj.middleware(up).Serve(x)
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Reason != proxy.ReasonDownstreamReset || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v, want downstream_reset soon after the client left", err, time.Since(start))
	}
	if up.hits != 0 {
		t.Error("the request went on after the client left")
	}
}

func TestNewRejectsInvalidPolicies(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	for _, tc := range []struct {
		p    *config.FaultPolicy
		want string
	}{
		{nil, "no policy"},
		{&config.FaultPolicy{Delay: &config.FaultDelay{Percent: 101, Duration: time.Second}}, "percent 101 is not in 0..100"},
		{&config.FaultPolicy{Delay: &config.FaultDelay{Percent: 1}}, "duration 0s is not above 0"},
		{&config.FaultPolicy{Abort: &config.FaultAbort{Percent: -1, Status: 500}}, "percent -1 is not in 0..100"},
		{&config.FaultPolicy{Abort: &config.FaultAbort{Percent: 1, Status: 99}}, "status 99 is not in 200..599"},
		{&config.FaultPolicy{Abort: &config.FaultAbort{Percent: 1, GRPCStatus: "nope"}}, `"nope" is not a gRPC status code`},
	} {
		_, err := New("r", tc.p, m)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `fault: route "r": `) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
	if _, err := New("r", &config.FaultPolicy{Header: "X-Chaos", Delay: &config.FaultDelay{Percent: 5, Duration: time.Millisecond}}, m); err != nil {
		t.Errorf("valid policy: %v", err)
	}
}

// TestMetrics: registering twice on one registry shares the collector, and the names lint clean.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.injected.WithLabelValues("r", KindDelay).Inc()
	b.injected.WithLabelValues("r", KindDelay).Inc()
	b.injected.WithLabelValues("r", KindAbort).Inc()
	if got := counterValue(t, a.injected.WithLabelValues("r", KindDelay)); got != 2 {
		t.Errorf("delays = %v, want 2 (one collector)", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "meshgate_fault_injected_total" {
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

// counterValue returns the value of counter c.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// BenchmarkNotInjected measures a request the policy lets through: the header gate, and a
// sampled-out abort.
func BenchmarkNotInjected(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	for _, tc := range []struct {
		name string
		p    *config.FaultPolicy
	}{
		{"header absent", &config.FaultPolicy{Header: "X-Chaos", Abort: &config.FaultAbort{Percent: 100, Status: 503}}},
		{"sampled out", &config.FaultPolicy{Abort: &config.FaultAbort{Percent: 0.001, Status: 503}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			mw, err := New("r", tc.p, m)
			if err != nil {
				b.Fatal(err)
			}
			h := mw(&upstream{})
			x, _ := newExchange("GET", httpmsg.Field{Name: "Accept", Value: "*/*"}, httpmsg.Field{Name: "User-Agent", Value: "bench"})
			b.ReportAllocs()
			for b.Loop() {
				_ = h.Serve(x)
			}
		})
	}
}
