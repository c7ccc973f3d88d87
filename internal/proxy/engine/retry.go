package engine

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Retry conditions as bits.
const (
	onConnectFailure uint8 = 1 << iota
	onRefusedStream
	onReset
	onGatewayError
	on5xx
	onRetriableStatus
	onRetriableGRPC
)

var retryConditions = map[string]uint8{
	config.RetryOnConnectFailure: onConnectFailure, config.RetryOnRefusedStream: onRefusedStream,
	config.RetryOnReset: onReset, config.RetryOnGatewayError: onGatewayError, config.RetryOn5xx: on5xx,
	config.RetryOnRetriableStatus: onRetriableStatus, config.RetryOnRetriableGRPC: onRetriableGRPC,
}

// retryPolicy is a route's compiled retry policy. It implements proxy.ResponseHold.
type retryPolicy struct {
	route         string
	attempts      int
	on            uint8
	statuses      [600]bool
	grpc          [17]bool
	perTry        time.Duration
	base, max     time.Duration
	nonIdempotent bool
	bufferBytes   int
	budget        *retryBudget
	metrics       *metrics.Registry
}

var _ proxy.ResponseHold = (*retryPolicy)(nil)

func compileRetry(route string, p *config.RetryPolicy, budget *retryBudget, m *metrics.Registry) *retryPolicy {
	rp := &retryPolicy{
		route: route, attempts: p.Attempts, perTry: p.PerTryTimeout, base: p.Backoff.Base, max: p.Backoff.Max,
		nonIdempotent: p.NonIdempotent, bufferBytes: p.BufferBytes, budget: budget, metrics: m,
	}
	for _, on := range p.On {
		rp.on |= retryConditions[on]
	}
	for _, s := range p.Statuses {
		rp.statuses[s] = true
	}
	for _, g := range p.GRPCStatuses {
		if c, ok := config.GRPCCode(g); ok {
			rp.grpc[c] = true
		}
	}
	return rp
}

// idempotent reports whether x's method may be sent twice (RFC 9110 section 9.2.2), or the policy
// allows retrying any method.
func (p *retryPolicy) idempotent(x *proxy.Exchange) bool {
	if p.nonIdempotent {
		return true
	}
	switch x.Req.Method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// Hold implements proxy.ResponseHold: a response whose status (or gRPC status, in a trailers-only
// response) the policy retries on is held back when the budget allows a retry and any
// Retry-After fits the backoff cap. Holding takes the retry from the budget.
func (p *retryPolicy) Hold(x *proxy.Exchange, resp *httpmsg.Response) bool {
	st := resp.Status
	retriable := (p.on&onGatewayError != 0 && (st == 502 || st == 503 || st == 504)) ||
		(p.on&on5xx != 0 && st >= 500 && st <= 599) ||
		(p.on&onRetriableStatus != 0 && st < len(p.statuses) && st >= 0 && p.statuses[st])
	if !retriable && p.on&onRetriableGRPC != 0 {
		if g, ok := resp.Header.Get("Grpc-Status"); ok {
			c, ok := config.GRPCCode(g)
			retriable = ok && p.grpc[c]
		}
	}
	if !retriable || !p.idempotent(x) || httpmsg.RetryAfter(resp.Header) > p.max {
		return false
	}
	return p.take(x, "status")
}

// take asks the budget for a retry and records the decision.
func (p *retryPolicy) take(x *proxy.Exchange, why string) bool {
	if !p.budget.tryRetry() {
		p.metrics.RetryBudgetExhausted.WithLabelValues(p.route, x.Service).Inc()
		return false
	}
	p.metrics.Retries.WithLabelValues(p.route, x.Service, why).Inc()
	return true
}

// retryOnError decides whether a failed attempt (one that wrote nothing downstream) is retried,
// taking the retry from the budget when it is.
func (p *retryPolicy) retryOnError(x *proxy.Exchange, err error) bool {
	var held *proxy.HeldResponse
	if errors.As(err, &held) {
		return true // Hold already decided, and took the budget
	}
	var pe *proxy.Error
	if !errors.As(err, &pe) {
		return false
	}
	var cond uint8
	safe := false // the request provably never reached the upstream
	switch pe.Reason {
	case proxy.ReasonUpstreamUnavailable, proxy.ReasonMeshTLS:
		// A mesh peer's handshake is part of connecting to it: the request was never sent.
		cond, safe = onConnectFailure|on5xx, true
	case proxy.ReasonUpstreamReset:
		var se http2.StreamError
		if errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream {
			cond, safe = onRefusedStream|on5xx, true
		} else {
			cond = onReset | on5xx
		}
	case proxy.ReasonUpstreamTimeout, proxy.ReasonStreamIdleTimeout, proxy.ReasonUpstreamProtocol:
		cond = onGatewayError | on5xx
	default:
		return false
	}
	if p.on&cond == 0 || !(safe || p.idempotent(x)) {
		return false
	}
	return p.take(x, pe.Reason)
}

// backoff returns the wait before retry n (1-based): full jitter over an exponential ceiling,
// raised to what Retry-After asked, never above the cap.
func (p *retryPolicy) backoff(n int, asked time.Duration) time.Duration {
	ceiling := p.base << min(n-1, 30)
	if ceiling > p.max || ceiling <= 0 {
		ceiling = p.max
	}
	var wait time.Duration
	if ceiling > 0 {
		wait = rand.N(ceiling + 1)
	}
	if asked > wait {
		wait = min(asked, p.max)
	}
	return wait
}

// serveRetrying sends x to s, and again after a retriable failure, as the policy allows.
func (s *service) serveRetrying(x *proxy.Exchange, p *retryPolicy) error {
	p.budget.request()
	var replay *[]byte
	var rec *recordedBody
	ok := true
	if x.Body != nil && x.Req.ContentLength < 0 {
		// A body of unknown length streams to the first attempt while it is recorded.
		rec = newRecordedBody(x.Body, p.bufferBytes)
		defer rec.release()
	} else {
		var err error
		if replay, ok, err = bufferBody(x, p.bufferBytes); err != nil {
			return err
		}
		if replay != nil {
			defer replayBufs.put(replay)
		}
	}
	retryable := ok && x.Req.Upgrade == ""
	routeDeadline := x.Deadline
	var last *cluster.Endpoint
	var lastErr error
	for attempt := 1; ; attempt++ {
		x.Attempts = attempt
		x.Deadline = routeDeadline
		if p.perTry > 0 {
			if d := time.Now().Add(p.perTry); routeDeadline.IsZero() || d.Before(routeDeadline) {
				x.Deadline = d
			}
		}
		if replay != nil {
			x.Body = bytes.NewReader(*replay)
			x.BytesIn = 0
		}
		if rec != nil {
			body, ok := rec.next()
			if !ok {
				return lastErr // the body outgrew the limit while the last attempt ended
			}
			x.Body = body
			x.BytesIn = 0
		}
		x.Hold = nil
		if retryable && attempt < p.attempts {
			x.Hold = p
		}
		ep, err := s.serveOnce(x, last)
		lastErr = err
		x.Hold = nil
		x.Deadline = routeDeadline
		last = ep
		if err == nil || !retryable || attempt >= p.attempts || x.W.HeadWritten() || !p.retryOnError(x, err) ||
			rec != nil && !rec.replayable() {
			return err
		}
		var held *proxy.HeldResponse
		var asked time.Duration
		if errors.As(err, &held) {
			asked = held.RetryAfter
		}
		wait := p.backoff(attempt, asked)
		if !routeDeadline.IsZero() && time.Now().Add(wait).After(routeDeadline) {
			wait = max(time.Until(routeDeadline), 0)
		}
		if wait > 0 {
			time.Sleep(wait)
		}
	}
}

// replayBufs holds buffers for request bodies kept for replay: the default limit plus the one
// byte that tells a body over the limit.
var replayBufs = newBufPool(64<<10 + 1)

// bufferBody reads a request body of at most limit bytes into a pooled buffer so it can be sent
// more than once. ok reports that the request can be replayed (it has no body, or its body fitted).
// A body that does not fit is left to stream as it would have without the policy.
func bufferBody(x *proxy.Exchange, limit int) (buf *[]byte, ok bool, err error) {
	if x.Body == nil {
		return nil, true, nil
	}
	if x.Req.ContentLength > int64(limit) {
		return nil, false, nil
	}
	bp := replayBufs.get(limit + 1)
	b := (*bp)[:limit+1]
	n, err := io.ReadFull(x.Body, b)
	switch {
	case err == nil:
		// More than limit bytes of a chunked body: stream what was read, then the rest.
		head := append([]byte(nil), b[:n]...)
		replayBufs.put(bp)
		x.Body = io.MultiReader(bytes.NewReader(head), x.Body)
		return nil, false, nil
	case (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) &&
		(x.Req.ContentLength < 0 || int64(n) == x.Req.ContentLength):
		*bp = b[:n]
		if x.Req.ContentLength < 0 {
			// The whole chunked body is known now: send it with a length.
			x.Req.ContentLength, x.Req.Chunked = int64(n), false
		}
		return bp, true, nil
	default:
		replayBufs.put(bp)
		var pe *proxy.Error
		if errors.As(err, &pe) {
			return nil, false, pe
		}
		return nil, false, proxy.Fail(400, proxy.ReasonDownstreamReset, err)
	}
}

// bufPool pools byte buffers of one size; larger requests get a buffer of their own.
type bufPool struct {
	size int
	pool sync.Pool
}

func newBufPool(size int) *bufPool { return &bufPool{size: size} }

func (p *bufPool) get(n int) *[]byte {
	if n > p.size {
		b := make([]byte, n)
		return &b
	}
	if v, ok := p.pool.Get().(*[]byte); ok {
		return v
	}
	b := make([]byte, p.size)
	return &b
}

func (p *bufPool) put(b *[]byte) {
	if cap(*b) == p.size {
		*b = (*b)[:cap(*b)]
		p.pool.Put(b)
	}
}
