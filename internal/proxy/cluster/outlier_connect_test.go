package cluster

import (
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// connectStep is one attempt reported on endpoint ep of a test cluster: a connect failure, a
// connection that answered status, or (connect false, status 0) a reset after connecting.
type connectStep struct {
	ep      int
	fail    bool // the connection could not be made
	status  int  // the answer, when there was one
	healthy *bool
}

// report reports s on c the way the engine does.
func (s connectStep) report(c *Cluster) {
	ep := c.Endpoints()[s.ep]
	if s.healthy != nil {
		c.setHealth(ep.Address, *s.healthy)
		return
	}
	c.Report(ep, s.status, s.fail || s.status == 0)
	c.ReportConnect(ep, s.fail)
}

func refused(ep, n int) []connectStep {
	steps := make([]connectStep, n)
	for i := range steps {
		steps[i] = connectStep{ep: ep, fail: true}
	}
	return steps
}

func concat(parts ...[]connectStep) []connectStep {
	var all []connectStep
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// TestOutlierConnectFailures: a service without outlierDetection ejects an endpoint after 3
// connect failures in a row, and for nothing else; an explicit block keeps its rules and gains
// consecutiveConnectFailures (default 3, 0 off).
func TestOutlierConnectFailures(t *testing.T) {
	down := false
	tests := []struct {
		name  string
		n     int
		od    *config.OutlierDetection
		steps []connectStep
		want  string // endpoints in rotation
	}{
		{"default: two failures eject nothing", 2, nil, refused(1, 2), "[0 1]"},
		{"default: the third ejects", 2, nil, refused(1, 3), "[0]"},
		{"default: a connection in between resets the count", 2, nil,
			concat(refused(1, 2), []connectStep{{ep: 1, status: 200}}, refused(1, 2)), "[0 1]"},
		{"default: a reset after connecting resets the count", 2, nil,
			concat(refused(1, 2), []connectStep{{ep: 1}}, refused(1, 2)), "[0 1]"},
		{"default: an endpoint's success leaves another's count", 2, nil,
			concat(refused(1, 2), []connectStep{{ep: 0, status: 200}}, refused(1, 1)), "[0]"},
		{"default: 5xx answers eject nothing", 2, nil,
			concat(func() []connectStep {
				s := make([]connectStep, 50)
				for i := range s {
					s[i] = connectStep{ep: 1, status: 503}
				}
				return s
			}()), "[0 1]"},
		{"default: the only endpoint stays", 1, nil, refused(0, 20), "[0]"},
		{"default: two dead endpoints, one stays", 2, nil, concat(refused(1, 3), refused(0, 20)), "[0]"},
		{"default: the last healthy endpoint stays", 2, nil,
			concat([]connectStep{{ep: 1, healthy: &down}}, refused(0, 10)), "[0]"},
		{"explicit: the last healthy endpoint may go", 2,
			&config.OutlierDetection{PanicThreshold: intp(0)},
			concat([]connectStep{{ep: 1, healthy: &down}}, refused(0, 3)), "[]"},
		{"default: 10% of 20 endpoints at most", 20, nil, concat(refused(1, 3), refused(2, 3), refused(3, 3)),
			"[0 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19]"},
		{"explicit: connect failures eject after 3 by default", 2,
			&config.OutlierDetection{MaxEjectionPercent: 50}, refused(1, 3), "[0]"},
		{"explicit: 0 turns connect failures off", 2,
			&config.OutlierDetection{ConsecutiveConnectFailures: intp(0), Consecutive5xx: intp(0), MaxEjectionPercent: 50},
			refused(1, 20), "[0 1]"},
		{"explicit: a higher count", 2,
			&config.OutlierDetection{ConsecutiveConnectFailures: intp(5), Consecutive5xx: intp(0), MaxEjectionPercent: 50},
			refused(1, 4), "[0 1]"},
		{"explicit: consecutive 5xx still counts connect failures", 2,
			&config.OutlierDetection{ConsecutiveConnectFailures: intp(0), Consecutive5xx: intp(2), MaxEjectionPercent: 50},
			refused(1, 2), "[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := outlierCluster(t, tt.n, tt.od, nil)
			for _, s := range tt.steps {
				s.report(c)
			}
			if got := inRotation(c); got != tt.want {
				t.Errorf("in rotation %s, want %s", got, tt.want)
			}
		})
	}
}

// TestOutlierConnectEjectionBackoff: the default detector's ejection lasts 5s, the next one 10s;
// the endpoint is back in rotation when each ends.
func TestOutlierConnectEjectionBackoff(t *testing.T) {
	c, clk := outlierCluster(t, 2, nil, nil)
	for _, s := range refused(1, 3) {
		s.report(c)
	}
	if got := inRotation(c); got != "[0]" {
		t.Fatalf("after 3 connect failures, in rotation %s, want [0]", got)
	}
	c.review(clk.Advance(4 * time.Second))
	if got := inRotation(c); got != "[0]" {
		t.Fatalf("4s into a 5s ejection, in rotation %s, want [0]", got)
	}
	c.review(clk.Advance(time.Second))
	if got := inRotation(c); got != "[0 1]" {
		t.Fatalf("after the 5s ejection, in rotation %s, want [0 1]", got)
	}
	for _, s := range refused(1, 3) {
		s.report(c)
	}
	c.review(clk.Advance(9 * time.Second))
	if got := inRotation(c); got != "[0]" {
		t.Fatalf("9s into the second ejection, in rotation %s, want [0] (it lasts 10s)", got)
	}
	c.review(clk.Advance(time.Second))
	if got := inRotation(c); got != "[0 1]" {
		t.Fatalf("after the 10s ejection, in rotation %s, want [0 1]", got)
	}
}
