package main

import (
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name     string
		out      string
		requests int64
		rps      float64
		errors   int64
		wantErr  bool
	}{
		{name: "clean", out: "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n  250000 requests in 5.00s, 40.00MB read\nRequests/sec:  49999.50\nTransfer/sec:      8.00MB\n",
			requests: 250000, rps: 49999.5},
		{name: "errors", out: "  1000 requests in 1.00s, 1MB read\n  Socket errors: connect 0, read 2, write 1, timeout 3\n  Non-2xx or 3xx responses: 4\nRequests/sec:   1000.00\n",
			requests: 1000, rps: 1000, errors: 10},
		{name: "garbage", out: "unable to connect", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := parseWrk(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if w.requests != tt.requests || w.rps != tt.rps || w.errors != tt.errors {
				t.Fatalf("got %+v, want %d requests, %g req/s, %d errors", w, tt.requests, tt.rps, tt.errors)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	res := &result{Runs: []runResult{
		{Kind: kindFixed, Path: pathDirect, Round: 0, P50us: 1000, P99us: 9000}, // warm-up: ignored
		{Kind: kindFixed, Path: pathDirect, Round: 1, P50us: 50, P99us: 100},
		{Kind: kindFixed, Path: pathMesh, Round: 1, P50us: 150, P99us: 300},
		{Kind: kindFixed, Path: pathDirect, Round: 2, P50us: 70, P99us: 120},
		{Kind: kindFixed, Path: pathMesh, Round: 2, P50us: 170, P99us: 320},
		{Kind: kindClosed, Path: pathDirect, Round: 1, RPS: 40000},
		{Kind: kindClosed, Path: pathMesh, Round: 1, RPS: 10000, ClientPeakRSS: 20000},
	}}
	summarize(res)
	if res.AddedP50us != 100 || res.AddedP99us != 200 {
		t.Fatalf("added p50 %g p99 %g, want 100 and 200", res.AddedP50us, res.AddedP99us)
	}
	if res.ThroughputRatio != 0.25 {
		t.Fatalf("throughput ratio %g, want 0.25", res.ThroughputRatio)
	}
	if len(res.Summary) != 4 || res.Summary[0].Rounds != 2 {
		t.Fatalf("summary %+v", res.Summary)
	}
}

func TestParseFlagsSmoke(t *testing.T) {
	o, err := parseFlags([]string{"-smoke", "-rate", "500"})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 1 || o.duration != time.Second || o.warmup != 0 || o.nice != 0 || o.rate != 500 {
		t.Fatalf("smoke options %+v", o)
	}
}
