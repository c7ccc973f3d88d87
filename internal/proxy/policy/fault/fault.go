// Package fault is the fault-injection policy of a route: it holds a share of requests back for a
// while (delay), answers a share with an error instead of forwarding them (abort), or both, the
// delay first. Each decision is drawn independently per request. A policy with a header name only
// touches requests that carry that header, so a test can opt in per request.
//
// An aborted request gets the policy's HTTP status with reason "fault_injected", or, when the
// policy names a gRPC status, a gRPC trailers-only response: status 200, content-type
// application/grpc, grpc-status and grpc-message header fields and no body. A delay never runs
// past the request's deadline: when the deadline comes first the request is answered 504 with
// reason "upstream_timeout", as if the upstream had been that slow.
package fault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ReasonFaultInjected marks a response the fault policy produced. It belongs with the other
// reason codes in package proxy.
const ReasonFaultInjected = proxy.ReasonFaultInjected

// Kinds of injected fault, the "kind" label of meshgate_fault_injected_total.
const (
	KindDelay = "delay"
	KindAbort = "abort"
)

// grpcMessage is the grpc-message of an injected gRPC abort.
const grpcMessage = "fault injected"

var errDelayPastDeadline = errors.New("fault: the injected delay outlasted the request's deadline")

// New compiles the fault policy p of the route named route into a middleware. It fails only when
// p is invalid (config validation reports the same problems first).
func New(route string, p *config.FaultPolicy, m *Metrics) (proxy.Middleware, error) {
	inj, err := newInjector(route, p, m, rand.Float64)
	if err != nil {
		return nil, err
	}
	return inj.middleware, nil
}

// injector is a compiled fault policy.
type injector struct {
	header   string
	delayP   float64 // share of requests delayed, 0 to 1
	delay    time.Duration
	abortP   float64            // share of requests aborted, 0 to 1
	status   int                // HTTP status of an abort, when grpc is ""
	body     string             // body of an HTTP abort
	grpc     string             // gRPC status code of an abort, as a decimal number, or ""
	delayed  prometheus.Counter // nil without a delay
	aborted  prometheus.Counter // nil without an abort
	random   func() float64     // uniform in [0, 1); safe for concurrent use
	hasDelay bool
	hasAbort bool
}

// newInjector compiles p, drawing its decisions from random.
func newInjector(route string, p *config.FaultPolicy, m *Metrics, random func() float64) (*injector, error) {
	if p == nil {
		return nil, fmt.Errorf("fault: route %q: no policy", route)
	}
	inj := &injector{header: p.Header, random: random}
	if d := p.Delay; d != nil {
		share, err := fraction(d.Percent)
		if err != nil {
			return nil, fmt.Errorf("fault: route %q: delay: %w", route, err)
		}
		if d.Duration <= 0 {
			return nil, fmt.Errorf("fault: route %q: delay: duration %v is not above 0", route, d.Duration)
		}
		inj.hasDelay, inj.delayP, inj.delay = true, share, d.Duration
		inj.delayed = m.injected.WithLabelValues(route, KindDelay)
	}
	if a := p.Abort; a != nil {
		share, err := fraction(a.Percent)
		if err != nil {
			return nil, fmt.Errorf("fault: route %q: abort: %w", route, err)
		}
		inj.hasAbort, inj.abortP = true, share
		inj.aborted = m.injected.WithLabelValues(route, KindAbort)
		switch {
		case a.GRPCStatus != "":
			c, ok := config.GRPCCode(a.GRPCStatus)
			if !ok {
				return nil, fmt.Errorf("fault: route %q: abort: %q is not a gRPC status code", route, a.GRPCStatus)
			}
			inj.grpc = strconv.Itoa(c)
		case a.Status >= 200 && a.Status <= 599:
			inj.status = a.Status
			inj.body = strconv.Itoa(a.Status) + " " + ReasonFaultInjected + "\n"
		default:
			return nil, fmt.Errorf("fault: route %q: abort: status %d is not in 200..599", route, a.Status)
		}
	}
	return inj, nil
}

// fraction turns a percentage into a share in [0, 1].
func fraction(percent float64) (float64, error) {
	if !(percent >= 0 && percent <= 100) {
		return 0, fmt.Errorf("percent %v is not in 0..100", percent)
	}
	return percent / 100, nil
}

// middleware implements proxy.Middleware.
func (f *injector) middleware(next proxy.Handler) proxy.Handler {
	return proxy.HandlerFunc(func(x *proxy.Exchange) error { return f.serve(x, next) })
}

// serve injects the faults drawn for x, then hands x to next unless it was aborted.
func (f *injector) serve(x *proxy.Exchange, next proxy.Handler) error {
	if f.header != "" && !x.Req.Header.Has(f.header) {
		return next.Serve(x)
	}
	if f.hasDelay && f.sample(f.delayP) {
		f.delayed.Inc()
		if err := f.wait(x); err != nil {
			return err
		}
	}
	if f.hasAbort && f.sample(f.abortP) {
		f.aborted.Inc()
		if f.grpc != "" {
			return f.abortGRPC(x)
		}
		return proxy.Respond(x, f.status, ReasonFaultInjected, "text/plain; charset=utf-8", f.body,
			httpmsg.Field{Name: "Cache-Control", Value: "no-store"})
	}
	return next.Serve(x)
}

// sample reports whether a request falls in the given share.
func (f *injector) sample(share float64) bool {
	return share >= 1 || (share > 0 && f.random() < share)
}

// wait holds x back for the policy's delay, or until its deadline if that comes first (then it
// fails with 504 upstream_timeout), or until the client goes away.
func (f *injector) wait(x *proxy.Exchange) error {
	d := f.delay
	pastDeadline := false
	if !x.Deadline.IsZero() {
		if left := time.Until(x.Deadline); left < d {
			d, pastDeadline = max(left, 0), true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var gone <-chan struct{}
	if x.Ctx != nil {
		gone = x.Ctx.Done()
	}
	select {
	case <-t.C:
	case <-gone:
		return proxy.Fail(499, proxy.ReasonDownstreamReset,
			fmt.Errorf("fault: the client went away during an injected delay: %w", context.Cause(x.Ctx)))
	}
	if pastDeadline {
		return proxy.Fail(504, proxy.ReasonUpstreamTimeout, errDelayPastDeadline)
	}
	return nil
}

// abortGRPC answers x with a gRPC trailers-only response carrying the policy's status.
func (f *injector) abortGRPC(x *proxy.Exchange) error {
	x.Status, x.Reason = 200, ReasonFaultInjected
	h := make(httpmsg.Header, 0, 5)
	h = append(h,
		httpmsg.Field{Name: "Content-Type", Value: "application/grpc"},
		httpmsg.Field{Name: "Grpc-Status", Value: f.grpc},
		httpmsg.Field{Name: "Grpc-Message", Value: grpcMessage},
		httpmsg.Field{Name: proxy.ReasonHeader, Value: ReasonFaultInjected})
	if x.ID != "" {
		h = append(h, httpmsg.Field{Name: "X-Request-Id", Value: x.ID})
	}
	resp := httpmsg.Response{Status: 200, Header: h, ContentLength: 0}
	if err := x.W.WriteHead(&resp); err != nil {
		return err
	}
	return x.W.Finish(nil)
}
