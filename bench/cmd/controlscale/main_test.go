package main

import (
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		d    []time.Duration
		want int
		out  summary
	}{
		{"empty", nil, 10, summary{To99ms: -1}},
		{"all", []time.Duration{3 * ms, 1 * ms, 2 * ms}, 3, summary{Count: 3, P50ms: 2, P99ms: 3, MaxMs: 3, To99ms: 3}},
		{"missing", []time.Duration{1 * ms, 2 * ms}, 3, summary{Count: 2, P50ms: 1, P99ms: 2, MaxMs: 2, To99ms: -1}},
		{"99 of 100", func() []time.Duration {
			d := make([]time.Duration, 100)
			for i := range d {
				d[i] = time.Duration(i+1) * ms
			}
			return d
		}(), 100, summary{Count: 100, P50ms: 50, P99ms: 99, MaxMs: 100, To99ms: 99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.d, tt.want); got != tt.out {
				t.Errorf("summarize = %+v, want %+v", got, tt.out)
			}
		})
	}
}

func TestConfigDocIsValid(t *testing.T) {
	cfg, err := config.LoadBytes("controlscale.yaml", []byte(configDoc([]string{"svc-0", "svc-1"})))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Services) != 2 || len(cfg.Routes) != 2 || cfg.Services[0].Discovery == nil {
		t.Fatalf("config: %d services, %d routes", len(cfg.Services), len(cfg.Routes))
	}
}
