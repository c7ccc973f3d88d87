package cluster

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// testBreaker returns the breaker cb configures on a fake clock.
func testBreaker(cb *config.CircuitBreaker) (*Breaker, *fakeClock) {
	b := newBreaker("users", cb, slog.New(slog.DiscardHandler), nil)
	clk := newFakeClock()
	b.now = clk.Now
	return b, clk
}

// wantRejected checks that err is a 503 circuit_open naming threshold.
func wantRejected(t *testing.T, err error, threshold string) {
	t.Helper()
	var pe *proxy.Error
	if !errors.As(err, &pe) || pe.Status != 503 || pe.Reason != ReasonCircuitOpen {
		t.Fatalf("error %v, want a 503 %s", err, ReasonCircuitOpen)
	}
	if !strings.Contains(err.Error(), threshold) || !strings.Contains(err.Error(), `"users"`) {
		t.Fatalf("error %q does not name the threshold %s and the service", err, threshold)
	}
}

func TestBreakerMaxRequestsAndRetries(t *testing.T) {
	b, _ := testBreaker(&config.CircuitBreaker{MaxRequests: 3, MaxRetries: 1})
	first, err := b.Admit(false)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := b.Admit(true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Admit(true)
	wantRejected(t, err, "maxRetries (1)")
	third, err := b.Admit(false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Admit(false)
	wantRejected(t, err, "maxRequests (3)")
	if req, ret := b.InFlight(); req != 3 || ret != 1 {
		t.Fatalf("in flight %d requests, %d retries; want 3 and 1", req, ret)
	}
	b.Done(retry, 200, false)
	if _, err := b.Admit(true); err != nil {
		t.Fatalf("a retry after one ended: %v", err)
	}
	b.Done(first, 200, false)
	b.Done(third, 503, false)
	if req, ret := b.InFlight(); req != 1 || ret != 1 {
		t.Fatalf("in flight %d requests, %d retries; want 1 and 1", req, ret)
	}
	if b.State() != "closed" {
		t.Fatalf("state %s: without consecutiveFailures the breaker never opens", b.State())
	}
}

func TestBreakerDefaults(t *testing.T) {
	b, _ := testBreaker(&config.CircuitBreaker{})
	if b.maxRequests != 1024 || b.maxRetries != 3 || b.maxPending != 1024 || b.maxConns != 1024 ||
		b.trip != 0 || b.openFor != 10*time.Second || b.probes != 1 {
		t.Fatalf("defaults %+v", b)
	}
}

func TestBreakerStateMachine(t *testing.T) {
	b, clk := testBreaker(&config.CircuitBreaker{ConsecutiveFailures: 3, OpenFor: 10 * time.Second, HalfOpenRequests: 2})
	attempt := func(status int, local bool) error {
		t.Helper()
		tk, err := b.Admit(false)
		if err != nil {
			return err
		}
		b.Done(tk, status, local)
		return nil
	}
	// Closed: failures must be consecutive; a success or a 4xx resets the count, and an attempt
	// that says nothing about the upstream does not count.
	for i, o := range []struct {
		status int
		local  bool
	}{{500, false}, {0, true}, {200, false}, {503, false}, {404, false}, {502, false}, {0, false}, {504, false}} {
		if err := attempt(o.status, o.local); err != nil {
			t.Fatalf("attempt %d refused while closed: %v", i, err)
		}
	}
	if b.State() != "closed" {
		t.Fatalf("state %s after failures that were not 3 in a row", b.State())
	}
	if err := attempt(0, true); err != nil { // the third in a row
		t.Fatal(err)
	}
	if b.State() != "open" {
		t.Fatalf("state %s after 3 consecutive failures, want open", b.State())
	}
	// Open: everything is refused until OpenFor has passed.
	wantRejected(t, attempt(200, false), "consecutiveFailures (3)")
	clk.Advance(9 * time.Second)
	wantRejected(t, attempt(200, false), "consecutiveFailures (3)")
	clk.Advance(time.Second)
	// Half-open: two probes go, a third is refused.
	p1, err := b.Admit(false)
	if err != nil || b.State() != "half_open" {
		t.Fatalf("first probe: %v, state %s", err, b.State())
	}
	p2, err := b.Admit(true)
	if err != nil {
		t.Fatalf("second probe: %v", err)
	}
	_, err = b.Admit(false)
	wantRejected(t, err, "halfOpenRequests (2)")
	// One probe succeeds, one fails: open again, for another OpenFor.
	b.Done(p1, 200, false)
	if b.State() != "half_open" {
		t.Fatalf("state %s after one of two probes succeeded", b.State())
	}
	b.Done(p2, 503, false)
	if b.State() != "open" {
		t.Fatalf("state %s after a probe failed, want open", b.State())
	}
	wantRejected(t, attempt(200, false), "consecutiveFailures")
	clk.Advance(10 * time.Second)
	// A probe that tells nothing gives its place to another; then both succeed and it closes.
	p1, _ = b.Admit(false)
	p2, _ = b.Admit(false)
	b.Done(p1, 0, false)
	p3, err := b.Admit(false)
	if err != nil {
		t.Fatalf("probe after a neutral one: %v", err)
	}
	b.Done(p2, 200, false)
	b.Done(p3, 204, false)
	if b.State() != "closed" {
		t.Fatalf("state %s after every probe succeeded, want closed", b.State())
	}
	if req, ret := b.InFlight(); req != 0 || ret != 0 {
		t.Fatalf("in flight %d, %d after everything ended", req, ret)
	}
	// Closed again, the count starts from zero.
	_ = attempt(500, false)
	_ = attempt(500, false)
	if b.State() != "closed" {
		t.Fatal("opened again on failures counted before it closed")
	}
}

func TestBreakerIgnoresResultsOfAnEarlierState(t *testing.T) {
	b, clk := testBreaker(&config.CircuitBreaker{ConsecutiveFailures: 1, OpenFor: time.Second})
	slow, _ := b.Admit(false) // admitted while closed, ends after the breaker opened and closed
	tk, _ := b.Admit(false)
	b.Done(tk, 500, false)
	clk.Advance(time.Second)
	probe, err := b.Admit(false)
	if err != nil {
		t.Fatal(err)
	}
	b.Done(probe, 200, false)
	if b.State() != "closed" {
		t.Fatalf("state %s", b.State())
	}
	b.Done(slow, 500, false)
	if b.State() != "closed" {
		t.Fatal("a failure admitted before the breaker opened reopened it")
	}
}

func TestBreakerConnectionThresholds(t *testing.T) {
	b, _ := testBreaker(&config.CircuitBreaker{MaxConnections: 2, MaxPendingRequests: 1})
	if !b.AcquireConn() || !b.AcquireConn() || b.AcquireConn() {
		t.Fatal("MaxConnections 2 did not allow exactly two connections")
	}
	b.ReleaseConn()
	if !b.AcquireConn() {
		t.Fatal("a released connection's place was not given again")
	}
	if err := b.BeginPending(); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, b.BeginPending(), "maxPendingRequests (1)")
	b.EndPending()
	if err := b.BeginPending(); err != nil {
		t.Fatal(err)
	}
	wantRejected(t, b.ConnOverflow(), "maxConnections (2)")
	if open, pending := b.Conns(); open != 2 || pending != 1 {
		t.Fatalf("open %d, pending %d", open, pending)
	}
}

func TestBreakerConcurrent(t *testing.T) {
	b, clk := testBreaker(&config.CircuitBreaker{MaxRequests: 8, MaxRetries: 2, ConsecutiveFailures: 5, OpenFor: time.Millisecond, HalfOpenRequests: 2})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 2000 {
				tk, err := b.Admit(i%3 == 0)
				if err != nil {
					continue
				}
				st := 200
				if (g*7+i)%5 == 0 {
					st = 503
				}
				b.Done(tk, st, false)
				if i%100 == 0 {
					clk.Advance(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if req, ret := b.InFlight(); req != 0 || ret != 0 {
		t.Fatalf("in flight %d, %d after everything ended", req, ret)
	}
	if n := testing.AllocsPerRun(100, func() {
		tk, _ := b.Admit(false)
		b.Done(tk, 200, false)
	}); n != 0 {
		t.Fatalf("Admit and Done allocate %v times", n)
	}
}

func TestClusterBreaker(t *testing.T) {
	c := mustNew(t, service(config.LBRoundRobin, "10.0.0.1:80"), Options{})
	if c.Breaker() != nil {
		t.Fatal("a service without circuitBreaker has a breaker")
	}
	svc := service(config.LBRoundRobin, "10.0.0.1:80")
	svc.CircuitBreaker = &config.CircuitBreaker{MaxRequests: 5}
	if c := mustNew(t, svc, Options{}); c.Breaker() == nil || c.Breaker().maxRequests != 5 {
		t.Fatal("the configured breaker is missing")
	}
}
