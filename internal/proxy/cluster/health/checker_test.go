package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// transitions records OnChange calls.
type transitions struct {
	mu     sync.Mutex
	events []event
	ch     chan event
}

type event struct {
	addr    string
	healthy bool
}

func newTransitions() *transitions {
	return &transitions{ch: make(chan event, 100)}
}

func (tr *transitions) onChange(addr string, healthy bool) {
	tr.mu.Lock()
	tr.events = append(tr.events, event{addr, healthy})
	tr.mu.Unlock()
	tr.ch <- event{addr, healthy}
}

// wait returns the next transition, failing the test after a few seconds.
func (tr *transitions) wait(t *testing.T) event {
	t.Helper()
	select {
	case e := <-tr.ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no health transition within 5s")
		return event{}
	}
}

// quiet fails the test when a transition arrives within d.
func (tr *transitions) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-tr.ch:
		t.Fatalf("unexpected transition %+v", e)
	case <-time.After(d):
	}
}

func fastCheck() *config.HealthCheck {
	return &config.HealthCheck{
		Interval:           20 * time.Millisecond,
		Timeout:            200 * time.Millisecond,
		UnhealthyThreshold: 3,
		HealthyThreshold:   2,
	}
}

func start(t *testing.T, opts Options) *Checker {
	t.Helper()
	c, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	return c
}

// statusServer answers every request with the current status and counts the requests it answered
// with a failing status.
type statusServer struct {
	*httptest.Server
	status   atomic.Int64
	failures atomic.Int64
	passes   atomic.Int64
	last     atomic.Pointer[http.Request]
}

func newStatusServer(t *testing.T) *statusServer {
	s := &statusServer{}
	s.status.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.last.Store(r)
		st := int(s.status.Load())
		if st >= 200 && st < 300 {
			s.passes.Add(1)
		} else {
			s.failures.Add(1)
		}
		w.WriteHeader(st)
		_, _ = w.Write([]byte(strings.Repeat("x", 10000))) // more than a probe reads
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) addr() string { return s.Listener.Addr().String() }

func TestNewErrors(t *testing.T) {
	tests := []struct {
		desc  string
		check *config.HealthCheck
	}{
		{desc: "no check"},
		{desc: "neither probe", check: &config.HealthCheck{}},
		{desc: "both probes", check: &config.HealthCheck{HTTP: &config.HTTPHealthCheck{}, TCP: &config.TCPHealthCheck{}}},
		{desc: "relative path", check: &config.HealthCheck{HTTP: &config.HTTPHealthCheck{Path: "healthz"}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if _, err := New(Options{Check: tt.check, Addresses: []string{"127.0.0.1:1"}}); err == nil {
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := New(Options{Check: &config.HealthCheck{TCP: &config.TCPHealthCheck{}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if c.check.Interval != DefaultInterval || c.check.Timeout != DefaultTimeout ||
		c.check.UnhealthyThreshold != DefaultUnhealthyThreshold || c.check.HealthyThreshold != DefaultHealthyThreshold {
		t.Fatalf("defaults not applied: %+v", c.check)
	}
}

func TestHTTPProbeRequest(t *testing.T) {
	s := newStatusServer(t)
	tests := []struct {
		desc     string
		check    config.HTTPHealthCheck
		wantPath string
		wantHost string
	}{
		{desc: "defaults", wantPath: "/", wantHost: s.addr()},
		{desc: "path, query and host", check: config.HTTPHealthCheck{Path: "/healthz?deep=1", Host: "health.internal"}, wantPath: "/healthz?deep=1", wantHost: "health.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			p, err := newHTTPProber(&tt.check, "", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer p.close()
			if err := p.probe(context.Background(), s.addr()); err != nil {
				t.Fatalf("probe: %v", err)
			}
			r := s.last.Load()
			if r.Method != http.MethodGet || r.RequestURI != tt.wantPath || r.Host != tt.wantHost ||
				r.UserAgent() != UserAgent || !r.Close || r.ProtoMajor != 1 {
				t.Fatalf("probe sent %s %s %s Host=%q UA=%q close=%v", r.Method, r.RequestURI, r.Proto, r.Host, r.UserAgent(), r.Close)
			}
		})
	}
}

func TestHTTPProbeStatus(t *testing.T) {
	s := newStatusServer(t)
	tests := []struct {
		desc     string
		status   int
		expected []int
		pass     bool
	}{
		{desc: "200 passes", status: 200, pass: true},
		{desc: "204 passes", status: 204, pass: true},
		{desc: "302 fails, not followed", status: 302},
		{desc: "500 fails", status: 500},
		{desc: "503 fails", status: 503},
		{desc: "expected 418 passes", status: 418, expected: []int{418}, pass: true},
		{desc: "200 fails when not expected", status: 200, expected: []int{204, 418}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			s.status.Store(int64(tt.status))
			p, err := newHTTPProber(&config.HTTPHealthCheck{ExpectedStatuses: tt.expected}, config.UpstreamHTTP1, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer p.close()
			err = p.probe(context.Background(), s.addr())
			if (err == nil) != tt.pass {
				t.Fatalf("probe error = %v, want pass %v", err, tt.pass)
			}
		})
	}
}

func TestHTTPProbeH2C(t *testing.T) {
	var proto atomic.Int64
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int64(r.ProtoMajor))
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true) // prior-knowledge HTTP/2 only, like a gRPC server
	s.Start()
	defer s.Close()
	for _, protocol := range []string{config.UpstreamHTTP2, config.UpstreamGRPC} {
		p, err := newHTTPProber(&config.HTTPHealthCheck{}, protocol, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.probe(context.Background(), s.Listener.Addr().String()); err != nil {
			t.Fatalf("%s probe: %v", protocol, err)
		}
		p.close()
		if proto.Load() != 2 {
			t.Fatalf("%s probe used HTTP/%d", protocol, proto.Load())
		}
	}
}

func TestHTTPProbeTimeout(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer s.Close()
	defer close(release)
	p, err := newHTTPProber(&config.HTTPHealthCheck{}, "", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := p.probe(ctx, s.Listener.Addr().String()); err == nil {
		t.Fatal("probe of a hanging server passed")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("probe took %v, want about the 50ms timeout", d)
	}
}

func TestHTTPEndpointLeavesAndReturns(t *testing.T) {
	good, bad := newStatusServer(t), newStatusServer(t)
	tr := newTransitions()
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{Path: "/healthz"}
	c := start(t, Options{Check: hc, Addresses: []string{good.addr(), bad.addr()}, OnChange: tr.onChange})

	// Both start healthy, and passing probes report nothing.
	if !c.Healthy(good.addr()) || !c.Healthy(bad.addr()) {
		t.Fatal("endpoints do not start healthy")
	}
	tr.quiet(t, 100*time.Millisecond)

	bad.status.Store(http.StatusInternalServerError)
	if e := tr.wait(t); e != (event{addr: bad.addr(), healthy: false}) {
		t.Fatalf("transition %+v, want endpoint 1 unhealthy", e)
	}
	// Exactly UnhealthyThreshold consecutive failures, no more: probes are sequential.
	if n := bad.failures.Load(); n != int64(hc.UnhealthyThreshold) {
		t.Fatalf("went unhealthy after %d failed probes, want %d", n, hc.UnhealthyThreshold)
	}
	if c.Healthy(bad.addr()) || !c.Healthy(good.addr()) {
		t.Fatal("Healthy does not reflect the transition")
	}

	passesBefore := bad.passes.Load()
	bad.status.Store(http.StatusOK)
	if e := tr.wait(t); e != (event{addr: bad.addr(), healthy: true}) {
		t.Fatalf("transition %+v, want endpoint 1 healthy", e)
	}
	if n := bad.passes.Load() - passesBefore; n != int64(hc.HealthyThreshold) {
		t.Fatalf("came back after %d passed probes, want %d", n, hc.HealthyThreshold)
	}
	if !c.Healthy(bad.addr()) {
		t.Fatal("Healthy does not reflect the recovery")
	}
}

func TestFlappingBelowThresholdReportsNothing(t *testing.T) {
	// Alternating pass and fail never reaches three consecutive failures.
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer s.Close()
	tr := newTransitions()
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{}
	start(t, Options{Check: hc, Addresses: []string{s.Listener.Addr().String()}, OnChange: tr.onChange})
	tr.quiet(t, 300*time.Millisecond)
	if n.Load() < 4 {
		t.Fatalf("only %d probes in 300ms at a 20ms interval", n.Load())
	}
}

func TestHTTPServerClosed(t *testing.T) {
	s := newStatusServer(t)
	tr := newTransitions()
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{}
	start(t, Options{Check: hc, Addresses: []string{s.addr()}, OnChange: tr.onChange})
	s.Close() // connection refused from now on
	if e := tr.wait(t); e != (event{addr: s.addr(), healthy: false}) {
		t.Fatalf("transition %+v, want endpoint 0 unhealthy", e)
	}
}

// acceptor accepts and closes connections until its listener closes.
func acceptor(t *testing.T, ln net.Listener) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	})
	return &wg
}

func TestTCPEndpointLeavesAndReturns(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	wg := acceptor(t, ln)

	tr := newTransitions()
	hc := fastCheck()
	hc.TCP = &config.TCPHealthCheck{}
	c := start(t, Options{Check: hc, Addresses: []string{addr}, OnChange: tr.onChange})
	tr.quiet(t, 100*time.Millisecond)

	_ = ln.Close()
	wg.Wait()
	if e := tr.wait(t); e != (event{addr: addr, healthy: false}) {
		t.Fatalf("transition %+v, want endpoint 0 unhealthy", e)
	}
	if c.Healthy(addr) {
		t.Fatal("Healthy after the listener closed")
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	wg = acceptor(t, ln)
	defer func() { _ = ln.Close(); wg.Wait() }()
	if e := tr.wait(t); e != (event{addr: addr, healthy: true}) {
		t.Fatalf("transition %+v, want endpoint 0 healthy", e)
	}
}

func TestFirstProbeIsSoon(t *testing.T) {
	s := newStatusServer(t)
	hc := fastCheck()
	hc.Interval = time.Hour // only the first probe can happen during the test
	hc.HTTP = &config.HTTPHealthCheck{}
	start(t, Options{Check: hc, Addresses: []string{s.addr()}})
	deadline := time.Now().Add(3 * time.Second)
	for s.passes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no probe within 3s of start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopAndCancel(t *testing.T) {
	s := newStatusServer(t)
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{}
	opts := Options{Check: hc, Addresses: []string{s.addr(), s.addr(), s.addr()}}

	t.Run("stop waits and is idempotent", func(t *testing.T) {
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Start(context.Background())
		c.Start(context.Background()) // no second set of goroutines
		time.Sleep(50 * time.Millisecond)
		c.Stop()
		c.Stop()
		// A probe sent just before Stop may still reach the server after Stop returned: let such
		// stragglers land before counting. A checker still running would probe several more
		// times in the window after that.
		time.Sleep(100 * time.Millisecond)
		n := s.passes.Load() + s.failures.Load()
		time.Sleep(150 * time.Millisecond)
		if m := s.passes.Load() + s.failures.Load(); m != n {
			t.Fatalf("%d probes started after Stop returned", m-n)
		}
	})
	t.Run("stop before start", func(t *testing.T) {
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		c.Stop()
		c.Start(context.Background()) // ignored after Stop
		c.Stop()
	})
	t.Run("context cancellation ends probing", func(t *testing.T) {
		c, err := New(opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.Start(ctx)
		time.Sleep(30 * time.Millisecond)
		cancel()
		c.Stop()
	})
	t.Run("stop during a hanging probe", func(t *testing.T) {
		release := make(chan struct{})
		hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer hang.Close()
		defer close(release)
		tr := newTransitions()
		slow := *hc
		slow.Timeout = 10 * time.Second
		c, err := New(Options{Check: &slow, Addresses: []string{hang.Listener.Addr().String()}, OnChange: tr.onChange})
		if err != nil {
			t.Fatal(err)
		}
		c.Start(context.Background())
		time.Sleep(100 * time.Millisecond) // the first probe is now waiting on the server
		began := time.Now()
		c.Stop()
		if d := time.Since(began); d > 2*time.Second {
			t.Fatalf("Stop took %v", d)
		}
		tr.quiet(t, 0) // an interrupted probe is not a failure
		if !c.Healthy(hang.Listener.Addr().String()) {
			t.Fatal("interrupted probe counted as a failure")
		}
	})
}

func TestJitter(t *testing.T) {
	d := 100 * time.Millisecond
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := jitter(d)
		if j < 90*time.Millisecond || j > 110*time.Millisecond {
			t.Fatalf("jitter(%v) = %v, want within ±10%%", d, j)
		}
		seen[j] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter produced only %d distinct delays", len(seen))
	}
}

func TestUpdate(t *testing.T) {
	a, b, c := newStatusServer(t), newStatusServer(t), newStatusServer(t)
	tr := newTransitions()
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{}
	chk := start(t, Options{Check: hc, Addresses: []string{a.addr(), b.addr()}, OnChange: tr.onChange})

	b.status.Store(http.StatusInternalServerError)
	if e := tr.wait(t); e != (event{addr: b.addr(), healthy: false}) {
		t.Fatalf("transition %+v, want b unhealthy", e)
	}
	// Drop a, keep b (unhealthy), add c (and c twice: probed once).
	chk.Update([]string{b.addr(), c.addr(), c.addr()})
	if chk.Healthy(a.addr()) || chk.Healthy(b.addr()) || !chk.Healthy(c.addr()) {
		t.Fatal("Update did not keep b's state or did not start c healthy")
	}
	probesOfA := a.passes.Load() + a.failures.Load()
	c.status.Store(http.StatusInternalServerError)
	if e := tr.wait(t); e != (event{addr: c.addr(), healthy: false}) {
		t.Fatalf("transition %+v, want the added c unhealthy", e)
	}
	b.status.Store(http.StatusOK)
	if e := tr.wait(t); e != (event{addr: b.addr(), healthy: true}) {
		t.Fatalf("transition %+v, want the kept b healthy", e)
	}
	// a is probed no more (one probe may have been in flight at Update).
	if n := a.passes.Load() + a.failures.Load(); n > probesOfA+1 {
		t.Fatalf("a probed %d times after its removal", n-probesOfA)
	}
	// A removed address that fails reports nothing.
	a.status.Store(http.StatusInternalServerError)
	tr.quiet(t, 150*time.Millisecond)

	// Update to nothing, then back: an empty checker neither panics nor probes.
	chk.Update(nil)
	tr.quiet(t, 100*time.Millisecond)
	chk.Update([]string{a.addr()})
	if e := tr.wait(t); e != (event{addr: a.addr(), healthy: false}) {
		t.Fatalf("transition %+v, want the re-added a unhealthy", e)
	}
}

func TestUpdateBeforeStartAndAfterStop(t *testing.T) {
	s := newStatusServer(t)
	hc := fastCheck()
	hc.HTTP = &config.HTTPHealthCheck{}
	c, err := New(Options{Check: hc})
	if err != nil {
		t.Fatal(err)
	}
	c.Update([]string{s.addr()}) // recorded; probed from Start on
	c.Start(context.Background())
	deadline := time.Now().Add(3 * time.Second)
	for s.passes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("an address added before Start is not probed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Stop()
	c.Update([]string{s.addr(), "127.0.0.1:1"}) // after Stop: no goroutine starts (goleak checks)
	if !c.Healthy("127.0.0.1:1") {
		t.Fatal("an address added after Stop is not recorded healthy")
	}
}
