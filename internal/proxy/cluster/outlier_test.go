package cluster

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/meshgate/meshgate/internal/config"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
	return f.t
}

// endpoints returns n loopback-looking addresses.
func endpoints(n int) []string {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("10.0.0.%d:80", i+1)
	}
	return addrs
}

// outlierCluster returns a round-robin cluster of n endpoints with outlier detection od, on a fake
// clock, not started: tests drive review themselves.
func outlierCluster(t *testing.T, n int, od *config.OutlierDetection, m *Metrics) (*Cluster, *fakeClock) {
	t.Helper()
	svc := service(config.LBRoundRobin, endpoints(n)...)
	svc.OutlierDetection = od
	c := mustNew(t, svc, Options{Metrics: m})
	clk := newFakeClock()
	c.now = clk.Now
	return c, clk
}

// inRotation returns the indexes of the endpoints the balancer picks from.
func inRotation(c *Cluster) string {
	var idx []string
	for _, ep := range c.current.Load().eps {
		idx = append(idx, fmt.Sprint(ep.Index()))
	}
	return "[" + strings.Join(idx, " ") + "]"
}

func intp(n int) *int { return &n }

// TestOutlierConsecutive5xxOff: consecutive5xx 0 turns the rule off, as documented, instead of
// falling back to the default.
func TestOutlierConsecutive5xxOff(t *testing.T) {
	c, _ := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(0), MaxEjectionPercent: 50}, nil)
	bad := c.Endpoints()[1]
	for i := 0; i < 20; i++ {
		c.Report(bad, 500, false)
	}
	if got := inRotation(c); got != "[0 1 2]" {
		t.Fatalf("after 20 consecutive 5xx with the rule off, in rotation %s, want [0 1 2]", got)
	}
}

func TestOutlierConsecutive5xx(t *testing.T) {
	c, _ := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(3), MaxEjectionPercent: 50}, nil)
	bad := c.Endpoints()[1]
	steps := []struct {
		status int
		local  bool
		want   string // endpoints in rotation after the step
	}{
		{500, false, "[0 1 2]"},
		{503, false, "[0 1 2]"},
		{404, false, "[0 1 2]"}, // any non-5xx answer is a success and resets the count
		{500, false, "[0 1 2]"},
		{0, false, "[0 1 2]"}, // nothing to learn (the client went away): no reset, no count
		{0, true, "[0 1 2]"},  // a connect failure counts as a 5xx
		{502, false, "[0 2]"},
		{500, false, "[0 2]"}, // ejected already
	}
	for i, s := range steps {
		c.Report(bad, s.status, s.local)
		if got := inRotation(c); got != s.want {
			t.Fatalf("step %d (%d, local %v): in rotation %s, want %s", i, s.status, s.local, got, s.want)
		}
	}
	if !bad.Ejected() || !bad.Healthy() || c.HealthyCount() != 2 {
		t.Fatalf("ejected %v, healthy %v, %d in rotation", bad.Ejected(), bad.Healthy(), c.HealthyCount())
	}
	for range 100 {
		if ep, _ := c.Pick(0, false); ep == bad {
			t.Fatal("picked the ejected endpoint")
		}
	}
	good := c.Endpoints()[0]
	if n := testing.AllocsPerRun(100, func() { c.Report(good, 200, false); c.Report(good, 500, false) }); n != 0 {
		t.Fatalf("Report allocates %v times", n)
	}
}

func TestOutlierConsecutiveGatewayErrors(t *testing.T) {
	c, _ := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(100), ConsecutiveGatewayErrors: 2, MaxEjectionPercent: 50}, nil)
	ep := c.Endpoints()[0]
	c.Report(ep, 503, false)
	c.Report(ep, 500, false) // a 5xx that is not a gateway error resets the gateway count
	c.Report(ep, 504, false)
	if ep.Ejected() {
		t.Fatal("ejected after gateway errors that were not consecutive")
	}
	c.Report(ep, 0, true) // a reset or timeout is a gateway error
	if !ep.Ejected() {
		t.Fatal("not ejected after two consecutive gateway errors")
	}
}

func TestOutlierEjectionTimeGrowsAndDecays(t *testing.T) {
	od := &config.OutlierDetection{
		Consecutive5xx: intp(1), Interval: time.Second, BaseEjectionTime: 10 * time.Second,
		MaxEjectionTime: 25 * time.Second, MaxEjectionPercent: 100, PanicThreshold: intp(0),
	}
	c, clk := outlierCluster(t, 2, od, nil)
	ep := c.Endpoints()[0]
	// ejectFor ejects ep and returns how long the ejection lasts, reviewing every second.
	ejectFor := func() time.Duration {
		t.Helper()
		c.Report(ep, 500, false)
		if !ep.Ejected() {
			t.Fatal("not ejected")
		}
		start := clk.Now()
		for ep.Ejected() {
			c.review(clk.Advance(time.Second))
			if clk.Now().Sub(start) > time.Hour {
				t.Fatal("never returned")
			}
		}
		return clk.Now().Sub(start)
	}
	// Base × number of ejections, capped at the maximum.
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second, 25 * time.Second} {
		if got := ejectFor(); got != want {
			t.Fatalf("ejection %d lasted %v, want %v", i+1, got, want)
		}
	}
	// Quiet intervals decay the multiplier by one each: after two, the next ejection is shorter.
	mult := c.Endpoints()[0].stats.multiplier
	c.review(clk.Advance(time.Second))
	c.review(clk.Advance(time.Second))
	if got := c.Endpoints()[0].stats.multiplier; got != mult-2 {
		t.Fatalf("multiplier %d after two quiet intervals, want %d", got, mult-2)
	}
	for range 10 {
		c.review(clk.Advance(time.Second))
	}
	if got := c.Endpoints()[0].stats.multiplier; got != 0 {
		t.Fatalf("multiplier %d after a long quiet spell, want 0", got)
	}
	if got := ejectFor(); got != 10*time.Second {
		t.Fatalf("after decay, ejection lasted %v, want the base 10s", got)
	}
}

func TestOutlierMaxEjectionPercent(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		endpoints int
		percent   int
		want      int // most ejected at once
	}{
		{"at least one", 4, 10, 1},
		{"one of two at 50", 2, 50, 1},
		{"a fifth of ten", 10, 20, 2},
		{"just under", 10, 29, 2},
		{"all", 3, 100, 3},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, _ := outlierCluster(t, tc.endpoints, &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: tc.percent, PanicThreshold: intp(0)}, nil)
			for _, ep := range c.Endpoints() {
				c.Report(ep, 500, false)
			}
			n := 0
			for _, ep := range c.Endpoints() {
				if ep.Ejected() {
					n++
				}
			}
			if n != tc.want {
				t.Fatalf("%d ejected, want %d", n, tc.want)
			}
			if c.HealthyCount() != tc.endpoints-n {
				t.Fatalf("%d in rotation, want %d", c.HealthyCount(), tc.endpoints-n)
			}
		})
	}
}

func TestSuccessRateThreshold(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		rates  []float64
		factor float64
		want   float64
	}{
		{"all equal", []float64{100, 100, 100, 100, 100}, 1.9, 100},
		{"one low", []float64{100, 100, 100, 100, 50}, 1.9, 90 - 1.9*20},
		{"two values", []float64{90, 70}, 1, 70},
		{"factor 0.5", []float64{100, 100, 100, 100, 50}, 0.5, 80},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := successRateThreshold(tc.rates, tc.factor); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("threshold %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOutlierSuccessRate(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		factor  float64
		success []int // successes of 40 requests per endpoint; -1: fewer requests than the volume
		want    string
	}{
		{"one outlier", 1, []int{40, 40, 40, 39, 20}, "[0 1 2 3]"},
		{"one slightly worse is still two deviations off", 1.9, []int{40, 40, 40, 40, 38}, "[0 1 2 3]"},
		{"no outlier when all fail alike", 1, []int{20, 20, 20, 20, 20}, "[0 1 2 3 4]"},
		{"too few hosts with volume", 1, []int{40, 40, 40, -1, 0}, "[0 1 2 3 4]"},
		{"two mild ones at factor 1", 1, []int{40, 40, 40, 36, 36}, "[0 1 2]"},
		{"two mild ones at factor 1.9", 1.9, []int{40, 40, 40, 36, 36}, "[0 1 2 3 4]"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			sr := &config.SuccessRateOutlier{MinimumHosts: 5, RequestVolume: 20, StdevFactor: tc.factor}
			od := &config.OutlierDetection{Consecutive5xx: intp(1000), SuccessRate: sr, MaxEjectionPercent: 100, Interval: time.Second}
			c, clk := outlierCluster(t, 5, od, nil)
			for i, ok := range tc.success {
				ep := c.Endpoints()[i]
				n := 40
				if ok < 0 {
					n, ok = 10, 10
				}
				for j := range n {
					st := 200
					if j >= ok {
						st = 503
					}
					c.Report(ep, st, false)
				}
			}
			c.review(clk.Advance(time.Second))
			if got := inRotation(c); got != tc.want {
				t.Fatalf("in rotation %s, want %s", got, tc.want)
			}
			// The next interval starts from zero: nothing more is ejected without new traffic.
			c.review(clk.Advance(time.Second))
			if got := inRotation(c); got != tc.want {
				t.Fatalf("after an empty interval, in rotation %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPanicThreshold(t *testing.T) {
	od := &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: 100} // panic threshold: default 50
	c, _ := outlierCluster(t, 4, od, nil)
	eps := c.Endpoints()
	c.Report(eps[0], 500, false)
	c.Report(eps[1], 500, false)
	if got := inRotation(c); got != "[2 3]" || c.Panicking() {
		t.Fatalf("two of four ejected: in rotation %s, panicking %v; want [2 3] and no panic", got, c.Panicking())
	}
	// Health checks count too: one more endpoint out makes 25% usable, below 50%.
	c.setHealthAt(2, false)
	if got := inRotation(c); got != "[0 1 2 3]" || !c.Panicking() {
		t.Fatalf("one of four usable: in rotation %s, panicking %v; want all and panic", got, c.Panicking())
	}
	c.setHealthAt(2, true)
	if got := inRotation(c); got != "[2 3]" || c.Panicking() {
		t.Fatalf("recovered: in rotation %s, panicking %v", got, c.Panicking())
	}
	// With every endpoint failing its health check, panic mode still sends traffic.
	for i := range eps {
		c.setHealthAt(i, false)
	}
	if ep, err := c.Pick(0, false); err != nil || ep == nil {
		t.Fatalf("Pick in panic mode = %v, %v", ep, err)
	}
}

func TestPanicThresholdOff(t *testing.T) {
	c, _ := outlierCluster(t, 2, &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: 100, PanicThreshold: intp(0)}, nil)
	c.Report(c.Endpoints()[0], 500, false)
	c.Report(c.Endpoints()[1], 500, false)
	if _, err := c.Pick(0, false); err == nil || c.Panicking() {
		t.Fatal("with panic mode off, a cluster with every endpoint ejected still picks")
	}
}

func TestNoOutlierDetectionMeansNoPanicMode(t *testing.T) {
	c := mustNew(t, service(config.LBRoundRobin, endpoints(4)...), Options{})
	c.Report(c.Endpoints()[0], 500, false) // no detector: ignored
	c.setHealthAt(0, false)
	c.setHealthAt(1, false)
	c.setHealthAt(2, false)
	if got := inRotation(c); got != "[3]" || c.Panicking() || c.Endpoints()[0].Ejected() {
		t.Fatalf("in rotation %s, panicking %v", got, c.Panicking())
	}
	if n := testing.AllocsPerRun(100, func() { c.Report(c.Endpoints()[1], 503, false) }); n != 0 {
		t.Fatalf("Report allocates %v times", n)
	}
}

func TestOutlierWithHealthChecks(t *testing.T) {
	c, clk := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(1), MaxEjectionPercent: 100,
		Interval: time.Second, BaseEjectionTime: 5 * time.Second, PanicThreshold: intp(0)}, nil)
	c.Report(c.Endpoints()[0], 500, false)
	c.setHealthAt(0, false)
	c.review(clk.Advance(10 * time.Second)) // the ejection ends, but the endpoint is unhealthy
	if got := inRotation(c); got != "[1 2]" || c.Endpoints()[0].Ejected() {
		t.Fatalf("in rotation %s", got)
	}
	c.setHealthAt(0, true)
	if got := inRotation(c); got != "[0 1 2]" {
		t.Fatalf("in rotation %s after the health check passed", got)
	}
}

func TestOutlierReviewLoop(t *testing.T) {
	svc := service(config.LBRoundRobin, endpoints(3)...)
	svc.OutlierDetection = &config.OutlierDetection{Consecutive5xx: intp(2), Interval: 10 * time.Millisecond, BaseEjectionTime: 50 * time.Millisecond}
	c := mustNew(t, svc, Options{})
	ctx := t.Context()
	c.Start(ctx)
	ep := c.Endpoints()[2]
	c.Report(ep, 500, false)
	c.Report(ep, 500, false)
	if !ep.Ejected() {
		t.Fatal("not ejected")
	}
	// The endpoint's flag clears just before the balancer is rebuilt with it: wait for both.
	eventually(t, "the ejection ends and the endpoint is back in rotation", func() bool {
		return !ep.Ejected() && c.HealthyCount() == 3
	})
	c.Close()
	c.Close()
}

func TestOutlierConcurrentReports(t *testing.T) {
	c, clk := outlierCluster(t, 4, &config.OutlierDetection{Consecutive5xx: intp(5), MaxEjectionPercent: 50,
		SuccessRate: &config.SuccessRateOutlier{MinimumHosts: 2, RequestVolume: 10, StdevFactor: 1}, Interval: time.Second}, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				ep, err := c.Pick(0, false)
				if err != nil {
					continue
				}
				st := 200
				if ep.Index() == 0 || (g+i)%7 == 0 {
					st = 503
				}
				c.Report(ep, st, false)
				if i%200 == 0 && g == 0 {
					c.review(clk.Advance(time.Second))
				}
			}
		})
	}
	wg.Wait()
	if !c.Endpoints()[0].Ejected() {
		t.Fatal("the always-failing endpoint is not ejected")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewMetrics(reg)
	if err != nil || again.Ejected != m.Ejected || again.BreakerRejected != m.BreakerRejected {
		t.Fatalf("second NewMetrics on one registry: %v, shared %v", err, again.Ejected == m.Ejected)
	}
	c, clk := outlierCluster(t, 3, &config.OutlierDetection{Consecutive5xx: intp(2), Interval: time.Second, BaseEjectionTime: time.Second}, m)
	ep := c.Endpoints()[1]
	c.Report(ep, 500, false)
	c.Report(ep, 500, false)
	if v := value(t, m.Ejections.WithLabelValues("users", EjectConsecutive5xx)); v != 1 {
		t.Fatalf("ejections = %v, want 1", v)
	}
	if v := value(t, m.Ejected.WithLabelValues("users", ep.Address)); v != 1 {
		t.Fatalf("ejected gauge = %v, want 1", v)
	}
	c.review(clk.Advance(time.Second))
	if v := value(t, m.Ejected.WithLabelValues("users", ep.Address)); v != 0 {
		t.Fatalf("ejected gauge after the ejection = %v, want 0", v)
	}
	b := newBreaker("users", &config.CircuitBreaker{MaxRequests: 1}, c.log, m)
	tk, _ := b.Admit(false)
	if _, err := b.Admit(false); err == nil {
		t.Fatal("second request admitted")
	}
	b.Done(tk, 200, false)
	if v := value(t, m.BreakerRejected.WithLabelValues("users", ThresholdMaxRequests)); v != 1 {
		t.Fatalf("rejected = %v, want 1", v)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 4 {
		t.Fatalf("gathered %d metric families, want 4", len(mfs))
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if _, err := NewMetrics(nil); err == nil {
		t.Fatal("NewMetrics(nil) succeeded")
	}
}

// value returns the value of a gauge or counter.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
