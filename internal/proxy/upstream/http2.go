package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// HTTP2Options configure an HTTP/2 transport.
type HTTP2Options struct {
	// ConnectTimeout bounds establishing a connection.
	ConnectTimeout time.Duration
	// IdleTimeout closes a connection with no open streams after this long.
	IdleTimeout time.Duration
	// Hooks report connection events.
	Hooks Hooks
	// Limiter, when set, bounds the connections of the whole service and the requests waiting
	// for one (a circuit breaker's thresholds).
	Limiter ConnLimiter
	// Dial, when set, opens connections instead of a plain TCP dial (mutual TLS to mesh peers,
	// which must have negotiated HTTP/2).
	Dial DialFunc
}

// HTTP2 forwards over cleartext HTTP/2 with prior knowledge (h2c): plain HTTP/2 services and gRPC.
// Requests to one endpoint are multiplexed over shared connections; trailers are relayed.
type HTTP2 struct {
	t       *http2.Transport
	limiter ConnLimiter
}

var _ Transport = (*HTTP2)(nil)

// NewHTTP2 returns an HTTP/2 transport.
func NewHTTP2(opts HTTP2Options) *HTTP2 {
	hooks := opts.Hooks
	lim := opts.Limiter
	d := net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &HTTP2{limiter: lim, t: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			if lim != nil && !lim.AcquireConn() {
				return nil, lim.ConnOverflow()
			}
			var c net.Conn
			var err error
			if opts.Dial != nil {
				if opts.ConnectTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, opts.ConnectTimeout)
					defer cancel()
				}
				c, err = opts.Dial(ctx, addr)
			} else {
				c, err = d.DialContext(ctx, network, addr)
			}
			if err != nil {
				if lim != nil {
					lim.ReleaseConn()
				}
				hooks.connectFailed()
				return nil, err
			}
			hooks.opened()
			onClose := hooks.closed
			if lim != nil {
				onClose = func() { lim.ReleaseConn(); hooks.closed() }
			}
			return &countedConn{Conn: c, onClose: onClose}, nil
		},
		IdleConnTimeout:  opts.IdleTimeout,
		ReadIdleTimeout:  30 * time.Second,
		PingTimeout:      10 * time.Second,
		WriteByteTimeout: 30 * time.Second,
	}}
}

// Close closes idle connections; streams in flight finish.
func (t *HTTP2) Close() { t.t.CloseIdleConnections() }

// errStreamIdle cancels an HTTP/2 exchange whose stream stayed idle too long.
var errStreamIdle = errors.New("upstream: no body bytes moved for the stream idle timeout")

// Forward implements Transport.
func (t *HTTP2) Forward(x *proxy.Exchange, addr string) error {
	ctx := x.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if !x.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, x.Deadline)
		defer cancel()
	}
	var idle *time.Timer
	if x.StreamIdle > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		idle = time.AfterFunc(x.StreamIdle, func() { cancel(errStreamIdle) })
		defer idle.Stop()
	}
	err := t.forward(ctx, x, addr, idle)
	if err != nil && errors.Is(context.Cause(ctx), errStreamIdle) {
		return proxy.Fail(504, proxy.ReasonStreamIdleTimeout, errStreamIdle)
	}
	return err
}

// forward runs the exchange under ctx; idle, when set, is pushed back whenever body bytes move.
func (t *HTTP2) forward(ctx context.Context, x *proxy.Exchange, addr string, idle *time.Timer) error {
	var progress func()
	if idle != nil {
		d := x.StreamIdle
		progress = func() { idle.Reset(d) }
	}
	req := &http.Request{
		Method:     x.Req.Method,
		URL:        &url.URL{Scheme: "http", Host: addr, Opaque: x.Req.Path, RawQuery: x.Req.Query},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Host:       x.Req.Host,
		Header:     make(http.Header, len(x.Req.Header)),
	}
	for _, f := range x.Req.Header {
		if http1.IsHopByHop(f.Name) {
			continue
		}
		req.Header[http.CanonicalHeaderKey(f.Name)] = append(req.Header[http.CanonicalHeaderKey(f.Name)], f.Value)
	}
	if httpmsg.HasToken(x.Req.Header.Value("TE"), "trailers") {
		req.Header.Set("Te", "trailers")
	}
	if x.Body != nil {
		req.Body = io.NopCloser(&bodyReader{r: x.Body, x: x, progress: progress})
		req.ContentLength = x.Req.ContentLength
	}
	if t.limiter != nil {
		// The request waits for a connection until the transport hands it one.
		if err := t.limiter.BeginPending(); err != nil {
			return err
		}
		var once sync.Once
		end := func() { once.Do(t.limiter.EndPending) }
		defer end()
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { end() }})
	}
	req = req.WithContext(ctx)
	x.UpstreamStart = time.Now()
	res, err := t.t.RoundTrip(req)
	if err != nil {
		if de, ok := asDownstream(err); ok {
			return de
		}
		return classify(err, false)
	}
	defer res.Body.Close()
	resp := httpmsg.Response{Status: res.StatusCode, Proto: httpmsg.HTTP2, ContentLength: res.ContentLength}
	resp.Header = make(httpmsg.Header, 0, len(res.Header))
	for k, vs := range res.Header {
		if http1.IsHopByHop(k) {
			continue
		}
		for _, v := range vs {
			resp.Header = append(resp.Header, httpmsg.Field{Name: k, Value: v})
		}
	}
	if x.Hold != nil && x.Hold.Hold(x, &resp) {
		x.UpstreamDuration = time.Since(x.UpstreamStart)
		return &proxy.HeldResponse{Status: resp.Status, RetryAfter: httpmsg.RetryAfter(resp.Header)}
	}
	for _, edit := range x.ResponseEdits {
		edit(&resp)
	}
	proxy.EchoRequestID(x, &resp)
	x.Status = resp.Status
	if err := x.W.WriteHead(&resp); err != nil {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	// Send the head at once (streams start before their first message), except a gRPC
	// trailers-only answer (grpc-status in the head): flushed, its head would travel without
	// END_STREAM and the client would see a stream that ends without trailers.
	if _, trailersOnly := resp.Header.Get("Grpc-Status"); !trailersOnly {
		if err := x.W.Flush(); err != nil {
			return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
		}
	}
	var body io.Reader = res.Body
	if progress != nil {
		body = &progressReader{r: res.Body, progress: progress}
	}
	if err := pump(x, body, nil, nil); err != nil {
		return err
	}
	x.UpstreamDuration = time.Since(x.UpstreamStart)
	var trailer httpmsg.Header
	for k, vs := range res.Trailer {
		for _, v := range vs {
			trailer = append(trailer, httpmsg.Field{Name: k, Value: v})
		}
	}
	if err := x.W.Finish(trailer); err != nil {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	return nil
}

// progressReader calls progress after every read that returns bytes.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}

// countedConn reports its close once.
type countedConn struct {
	net.Conn
	onClose func()
	closed  atomic.Bool
}

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.onClose()
	}
	return c.Conn.Close()
}
