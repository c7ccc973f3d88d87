package engine

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
)

// TestAttemptOutcome checks what an attempt's result tells the circuit breaker and outlier
// detection about the endpoint.
func TestAttemptOutcome(t *testing.T) {
	tests := []struct {
		desc      string
		status    int // x.Status when the attempt returned
		err       error
		wantCode  int
		wantLocal bool
	}{
		{desc: "answered 200", status: 200, wantCode: 200},
		{desc: "answered 503, relayed", status: 503, wantCode: 503},
		{desc: "answered 404", status: 404, wantCode: 404},
		{desc: "held for a retry", err: &proxy.HeldResponse{Status: 502}, wantCode: 502},
		{desc: "wrapped held response", err: fmt.Errorf("attempt: %w", &proxy.HeldResponse{Status: 504}), wantCode: 504},
		{desc: "connect failure", err: proxy.Fail(503, proxy.ReasonUpstreamUnavailable, errors.New("refused")), wantLocal: true},
		{desc: "mesh handshake failed", err: proxy.Fail(503, proxy.ReasonMeshTLS, io.ErrUnexpectedEOF), wantLocal: true},
		{desc: "reset", err: proxy.Fail(502, proxy.ReasonUpstreamReset, io.ErrUnexpectedEOF), wantLocal: true},
		{desc: "timeout", err: proxy.Fail(504, proxy.ReasonUpstreamTimeout, nil), wantLocal: true},
		{desc: "malformed response", err: proxy.Fail(502, proxy.ReasonUpstreamProtocol, nil), wantLocal: true},
		{desc: "reset after the head went downstream", status: 200, err: proxy.Fail(502, proxy.ReasonUpstreamReset, nil), wantLocal: true},
		{desc: "client went away before an answer", err: proxy.Fail(499, proxy.ReasonDownstreamReset, nil)},
		{desc: "client went away mid-body", status: 200, err: proxy.Fail(499, proxy.ReasonDownstreamReset, nil), wantCode: 200},
		{desc: "request body too slow", err: proxy.Fail(408, proxy.ReasonRequestTimeout, nil)},
		{desc: "pool refused: too many pending", err: proxy.Fail(503, cluster.ReasonCircuitOpen, nil)},
		{desc: "unknown error", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			x := &proxy.Exchange{Status: tt.status}
			code, local := attemptOutcome(x, tt.err)
			if code != tt.wantCode || local != tt.wantLocal {
				t.Fatalf("attemptOutcome = %d, local %v; want %d, local %v", code, local, tt.wantCode, tt.wantLocal)
			}
		})
	}
}

// TestConnectFailed checks which failed attempts count as connect failures of their endpoint
// (outlier detection's consecutive connect failures).
func TestConnectFailed(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		desc string
		err  error
		want bool
	}{
		{"dial refused", proxy.Fail(503, proxy.ReasonUpstreamUnavailable, dial), true},
		{"mesh peer died mid-handshake", proxy.Fail(503, proxy.ReasonMeshTLS, io.ErrUnexpectedEOF), true},
		{"pool full, no dial", proxy.Fail(503, proxy.ReasonUpstreamUnavailable, errors.New("pool full")), false},
		{"reset after connecting", proxy.Fail(502, proxy.ReasonUpstreamReset, io.ErrUnexpectedEOF), false},
		{"not a proxy error", dial, false},
	}
	for _, tt := range tests {
		if got := connectFailed(tt.err); got != tt.want {
			t.Errorf("%s: connectFailed = %v, want %v", tt.desc, got, tt.want)
		}
	}
}
