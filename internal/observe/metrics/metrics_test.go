package metrics

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestNamesFollowConventions lints every metric meshgate exports: Prometheus naming rules
// (promlint) plus our own prefix rule meshgate_<subsystem>_<name>_<unit>.
func TestNamesFollowConventions(t *testing.T) {
	r := New()
	r.Requests.WithLabelValues("l", "r", "s", "200", "").Inc()
	r.RequestDuration.WithLabelValues("r", "s").Observe(0.1)
	r.UpstreamDuration.WithLabelValues("s").Observe(0.1)
	r.UpstreamConnections.WithLabelValues("s").Set(1)
	r.UpstreamConnects.WithLabelValues("s", "success").Inc()
	r.DownstreamConnections.WithLabelValues("l").Set(1)
	r.EndpointHealthy.WithLabelValues("s", "127.0.0.1:1").Set(1)
	r.Reloads.WithLabelValues("success").Inc()
	r.Retries.WithLabelValues("r", "s", "status").Inc()
	r.RetryBudgetExhausted.WithLabelValues("r", "s").Inc()
	r.RateLimitDecisions.WithLabelValues("r", "limited").Inc()
	mfs, err := r.Prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ours := regexp.MustCompile(`^meshgate_[a-z]+_[a-z_]+$`)
	seen := 0
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "meshgate_") {
			continue
		}
		seen++
		if !ours.MatchString(name) {
			t.Errorf("metric %q does not follow meshgate_<subsystem>_<name>_<unit>", name)
		}
	}
	if seen != 13 {
		t.Errorf("gathered %d meshgate metrics, want 13", seen)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "meshgate_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{{200, "200"}, {599, "599"}, {100, "100"}, {99, "99"}, {600, "600"}} {
		if got := StatusCode(tc.code); got != tc.want {
			t.Errorf("StatusCode(%d) = %q, want %q", tc.code, got, tc.want)
		}
	}
}
