package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestGRPCTimeout(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"5S", 5 * time.Second, true},
		{"1H", time.Hour, true},
		{"99999999n", 99999999, true},
		{"250u", 250 * time.Microsecond, true},
		{"2M", 2 * time.Minute, true},
		{"100", 0, false},
		{"m", 0, false},
		{"123456789m", 0, false}, // more than 8 digits
		{"-5S", 0, false},
		{"5s", 0, false}, // units are case-sensitive
	} {
		got, ok := parseGRPCTimeout(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseGRPCTimeout(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, d := range []time.Duration{1, 999, 5 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Hour, 200 * 24 * time.Hour} {
		s := formatGRPCTimeout(d)
		back, ok := parseGRPCTimeout(s)
		if !ok || back > d || len(s) > 9 {
			t.Errorf("formatGRPCTimeout(%v) = %q, which parses to %v, %v", d, s, back, ok)
		}
	}
}

func TestClientDeadline(t *testing.T) {
	start := time.Now()
	for _, tc := range []struct {
		desc       string
		header     httpmsg.Header
		route      time.Duration // 0: no route deadline
		want       time.Duration // 0: none
		wantHeader string
	}{
		{"grpc-timeout shortens", httpmsg.Header{{Name: "grpc-timeout", Value: "100m"}}, 5 * time.Second, 100 * time.Millisecond, "grpc-timeout"},
		{"cannot extend", httpmsg.Header{{Name: "grpc-timeout", Value: "10S"}}, time.Second, time.Second, "grpc-timeout"},
		{"ms header without route deadline", httpmsg.Header{{Name: "X-Meshgate-Timeout-Ms", Value: "250"}}, 0, 250 * time.Millisecond, "X-Meshgate-Timeout-Ms"},
		{"malformed ignored", httpmsg.Header{{Name: "X-Meshgate-Timeout-Ms", Value: "soon"}}, time.Second, time.Second, ""},
		{"none", nil, 0, 0, ""},
	} {
		x := &proxy.Exchange{Start: start, Req: httpmsg.Request{Header: tc.header.Clone()}}
		if tc.route > 0 {
			x.Deadline = start.Add(tc.route)
		}
		applyClientDeadline(x)
		var got time.Duration
		if !x.Deadline.IsZero() {
			got = x.Deadline.Sub(start)
		}
		if got != tc.want {
			t.Errorf("%s: deadline %v after start, want %v", tc.desc, got, tc.want)
			continue
		}
		if err := propagateDeadline(x); err != nil {
			t.Errorf("%s: %v", tc.desc, err)
			continue
		}
		if tc.wantHeader != "" {
			v := x.Req.Header.Value(tc.wantHeader)
			var left time.Duration
			var ok bool
			if tc.wantHeader == "grpc-timeout" {
				left, ok = parseGRPCTimeout(v)
			} else {
				var ms uint64
				ms, ok = parseUint(v)
				left = time.Duration(ms) * time.Millisecond
			}
			if !ok || left > tc.want || left < tc.want-time.Second {
				t.Errorf("%s: forwarded %s %q, want at most %v", tc.desc, tc.wantHeader, v, tc.want)
			}
		}
	}
	x := &proxy.Exchange{Deadline: time.Now().Add(-time.Millisecond)}
	if err := propagateDeadline(x); proxy.AsError(err).Reason != proxy.ReasonUpstreamTimeout {
		t.Errorf("a passed deadline gives %v, want upstream_timeout", err)
	}
}

// TestBufferBodyUsesThePool: with the default limit, buffering a body reuses pooled buffers.
func TestBufferBodyUsesThePool(t *testing.T) {
	body := make([]byte, 1000)
	allocs := testing.AllocsPerRun(100, func() {
		x := &proxy.Exchange{Req: httpmsg.Request{ContentLength: int64(len(body))}, Body: bytes.NewReader(body)}
		bp, ok, err := bufferBody(x, 64<<10)
		if err != nil || !ok || len(*bp) != len(body) {
			t.Fatalf("bufferBody = %v, %v, %v", bp, ok, err)
		}
		replayBufs.put(bp)
	})
	if allocs > 3 { // the Exchange, its reader and the replay reader; never a 64 KiB buffer
		t.Errorf("%v allocations per buffered body; the pool is not reused", allocs)
	}
}
