package upstream

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
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
}

// HTTP2 forwards over cleartext HTTP/2 with prior knowledge (h2c): plain HTTP/2 services and gRPC.
// Requests to one endpoint are multiplexed over shared connections; trailers are relayed.
type HTTP2 struct {
	t *http2.Transport
}

var _ Transport = (*HTTP2)(nil)

// NewHTTP2 returns an HTTP/2 transport.
func NewHTTP2(opts HTTP2Options) *HTTP2 {
	hooks := opts.Hooks
	d := net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	return &HTTP2{t: &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				hooks.connectFailed()
				return nil, err
			}
			hooks.opened()
			return &countedConn{Conn: c, onClose: hooks.closed}, nil
		},
		IdleConnTimeout:  opts.IdleTimeout,
		ReadIdleTimeout:  30 * time.Second,
		PingTimeout:      10 * time.Second,
		WriteByteTimeout: 30 * time.Second,
	}}
}

// Close closes idle connections; streams in flight finish.
func (t *HTTP2) Close() { t.t.CloseIdleConnections() }

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
		req.Body = io.NopCloser(&bodyReader{r: x.Body, x: x})
		req.ContentLength = x.Req.ContentLength
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
	x.Status = resp.Status
	if err := x.W.WriteHead(&resp); err != nil {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	if err := x.W.Flush(); err != nil {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	if err := pump(x, res.Body, nil); err != nil {
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
