package config

import (
	"reflect"
	"testing"
	"time"
)

// circuitErrors returns the errors of the circuit-breaker and outlier-detection validators on
// every service of doc that sets them (see policyErrors).
func circuitErrors(t *testing.T, doc string) []string {
	return policyErrors(t, doc, func(v *validator, c *Config) {
		for i := range c.Services {
			svc := &c.Services[i]
			s := v.object(pathIndex("services", i), svc.Name)
			if svc.CircuitBreaker != nil {
				checkCircuitBreaker(s.key("circuitBreaker"), svc.CircuitBreaker)
			}
			if svc.OutlierDetection != nil {
				checkOutlier(s.key("outlierDetection"), svc.OutlierDetection)
			}
		}
	})
}

func TestCircuitDefaults(t *testing.T) {
	cb := &CircuitBreaker{}
	circuitBreakerDefaults(cb)
	want := CircuitBreaker{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3,
		OpenFor: 10 * time.Second, HalfOpenRequests: 1}
	if *cb != want {
		t.Errorf("circuit breaker defaults %+v, want %+v", *cb, want)
	}
	set := CircuitBreaker{MaxConnections: 1, MaxPendingRequests: 2, MaxRequests: 3, MaxRetries: 4,
		ConsecutiveFailures: 5, OpenFor: time.Second, HalfOpenRequests: 6}
	got := set
	circuitBreakerDefaults(&got)
	if got != set {
		t.Errorf("defaults changed set fields: %+v", got)
	}

	od := &OutlierDetection{SuccessRate: &SuccessRateOutlier{}}
	outlierDefaults(od)
	fifty := 50
	wantOD := OutlierDetection{Consecutive5xx: ptrInt(5), ConsecutiveConnectFailures: ptrInt(3), Interval: 10 * time.Second, BaseEjectionTime: 30 * time.Second,
		MaxEjectionTime: 300 * time.Second, MaxEjectionPercent: 10, PanicThreshold: &fifty,
		SuccessRate: &SuccessRateOutlier{MinimumHosts: 5, RequestVolume: 100, StdevFactor: 1.9}}
	if !reflect.DeepEqual(*od, wantOD) {
		t.Errorf("outlier defaults %+v (success rate %+v), want %+v", *od, *od.SuccessRate, wantOD)
	}
	zero := 0
	off := &OutlierDetection{PanicThreshold: &zero}
	outlierDefaults(off)
	if *off.PanicThreshold != 0 || off.SuccessRate != nil {
		t.Errorf("defaults changed an explicit panic threshold of 0 or added a success-rate rule: %+v", off)
	}
	again := *od
	outlierDefaults(&again)
	if !reflect.DeepEqual(again, *od) {
		t.Error("applying the defaults twice changed something")
	}
}

func TestValidateCircuit(t *testing.T) {
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "valid settings and defaults",
			yaml: `version: 1
services:
  - name: defaults
    circuitBreaker: {}
    outlierDetection: {}
  - name: all-set
    circuitBreaker:
      maxConnections: 1
      maxPendingRequests: 1
      maxRequests: 1
      maxRetries: 1
      consecutiveFailures: 5
      openFor: 1ms
      halfOpenRequests: 1000
    outlierDetection:
      consecutive5xx: 1
      consecutiveGatewayErrors: 3
      interval: 10ms
      baseEjectionTime: 1s
      maxEjectionTime: 1s
      maxEjectionPercent: 100
      panicThreshold: 0
      successRate: {minimumHosts: 1, requestVolume: 1, stdevFactor: 100}
`,
		},
		{
			desc: "breaker out of range",
			yaml: `version: 1
services:
  - name: a
    circuitBreaker:
      maxConnections: -1
      maxPendingRequests: -2
      maxRequests: 2000000000
      maxRetries: -3
      consecutiveFailures: -1
      openFor: -1s
      halfOpenRequests: 1001
  - name: b
    circuitBreaker: {openFor: 25h}
`,
			want: []string{
				`gateway.yaml:5: service "a": circuitBreaker.maxConnections: must be at least 1`,
				`gateway.yaml:6: service "a": circuitBreaker.maxPendingRequests: must be at least 1`,
				`gateway.yaml:7: service "a": circuitBreaker.maxRequests: 2000000000 is more than the maximum of 1073741824`,
				`gateway.yaml:8: service "a": circuitBreaker.maxRetries: must be at least 1`,
				`gateway.yaml:9: service "a": circuitBreaker.consecutiveFailures: must not be negative`,
				`gateway.yaml:10: service "a": circuitBreaker.openFor: must be above 0`,
				`gateway.yaml:11: service "a": circuitBreaker.halfOpenRequests: 1001 is more than the maximum of 1000`,
				`gateway.yaml:13: service "b": circuitBreaker.openFor: 25h0m0s is more than the maximum of 24h0m0s`,
			},
		},
		{
			desc: "outlier detection out of range",
			yaml: `version: 1
services:
  - name: a
    outlierDetection:
      consecutive5xx: -1
      consecutiveGatewayErrors: -1
      interval: 1ms
      baseEjectionTime: -1s
      maxEjectionPercent: 101
      panicThreshold: -1
      successRate: {minimumHosts: -1, requestVolume: -1, stdevFactor: -1}
  - name: b
    outlierDetection: {panicThreshold: 101, interval: 2h, successRate: {stdevFactor: .nan}}
`,
			want: []string{
				`gateway.yaml:5: service "a": outlierDetection.consecutive5xx: must not be negative`,
				`gateway.yaml:6: service "a": outlierDetection.consecutiveGatewayErrors: must not be negative`,
				`gateway.yaml:7: service "a": outlierDetection.interval: 1ms is less than the minimum of 10ms`,
				`gateway.yaml:8: service "a": outlierDetection.baseEjectionTime: must be above 0`,
				`gateway.yaml:9: service "a": outlierDetection.maxEjectionPercent: 101 is more than the maximum of 100`,
				`gateway.yaml:10: service "a": outlierDetection.panicThreshold: must not be negative`,
				`gateway.yaml:11: service "a": outlierDetection.successRate.minimumHosts: must be at least 1`,
				`gateway.yaml:11: service "a": outlierDetection.successRate.requestVolume: must be at least 1`,
				`gateway.yaml:11: service "a": outlierDetection.successRate.stdevFactor: -1 is not a factor above 0 and at most 100`,
				`gateway.yaml:13: service "b": outlierDetection.interval: 2h0m0s is more than the maximum of 1h0m0s`,
				`gateway.yaml:13: service "b": outlierDetection.panicThreshold: 101 is more than the maximum of 100`,
				`gateway.yaml:13: service "b": outlierDetection.successRate.stdevFactor: NaN is not a factor above 0 and at most 100`,
			},
		},
		{
			desc: "base ejection time above the maximum",
			yaml: `version: 1
services:
  - name: base-set
    outlierDetection:
      baseEjectionTime: 10m
  - name: both-set
    outlierDetection:
      baseEjectionTime: 10s
      maxEjectionTime: 5s
`,
			want: []string{
				`gateway.yaml:5: service "base-set": outlierDetection.baseEjectionTime: 10m0s is more than the maximum ejection time (5m0s)`,
				`gateway.yaml:9: service "both-set": outlierDetection.maxEjectionTime: 5s is less than the base ejection time (10s)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := circuitErrors(t, tt.yaml)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d errors:\n\t%v\nwant %d:\n\t%v", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func ptrInt(n int) *int { return &n }
