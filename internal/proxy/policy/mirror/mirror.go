// Package mirror is the request-mirroring policy of a route: it copies a share of requests to a
// shadow service, fire and forget. The client's response never waits for the copy, and nothing
// the shadow does (answers, errors, slowness) reaches the client.
//
// # Bodies
//
// A copy needs the whole request body, so only requests whose body is known to fit in
// MaxBodyBytes are mirrored:
//
//   - a request without a body is copied at once;
//   - a body with a declared length (Content-Length) of at most MaxBodyBytes is read into memory
//     first; the original request then reads it from there and the copy from its own reader over
//     the same bytes, and the copy is sent at once. A longer declared body is not mirrored and
//     streams untouched;
//   - a body of unknown length (chunked, or an HTTP/2 stream without content-length) is never held
//     back, since a streaming client may wait for an answer before sending more: it streams to the
//     upstream as usual while up to MaxBodyBytes+1 bytes of it are kept on the side. When the body
//     ends within MaxBodyBytes the copy is sent, with a declared length; when it is longer, or the
//     original exchange ends before its body was read to the end, the request is not mirrored.
//
// Upgrade requests (WebSocket) are never mirrored.
//
// # The copy
//
// The copy has the request's method, path, query and a copy of its header fields as they stand
// when the policy runs (after the route's request filters when the policy runs after them), its
// own body reader, and the request's deadline (or a deadline of DefaultShadowTimeout when the
// request has none). Its Host (HTTP/2 :authority) gets "-shadow" appended to the host name, before
// any port, as Envoy does: "api.example.com:8080" becomes "api.example.com-shadow:8080". Its
// response is read and discarded.
//
// At most MaxInFlight copies of one route's policy are in flight at once; a copy beyond that is
// dropped. meshgate_mirror_requests_total counts every sampled request once by result: "sent"
// (the shadow answered, whatever its status), "failed" (the copy could not be delivered or no
// answer came in time), "dropped" (over MaxInFlight) or "skipped" (the body did not fit or never
// ended, or the request was an upgrade).
package mirror

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// DefaultShadowTimeout bounds a copy of a request that has no deadline of its own.
const DefaultShadowTimeout = 30 * time.Second

// Results of a sampled request, the "result" label of meshgate_mirror_requests_total.
const (
	ResultSent    = "sent"
	ResultFailed  = "failed"
	ResultDropped = "dropped"
	ResultSkipped = "skipped"
)

// New returns the middleware of the mirror policy p of the route named route. send forwards a
// copy to the shadow service (the service's handler); it is called on a goroutine of its own. log
// receives a debug line for every copy that fails; nil discards them.
func New(route string, p *config.MirrorPolicy, send proxy.Handler, m *Metrics, log *slog.Logger) proxy.Middleware {
	return newMirror(route, p, send, m, log, rand.Float64).middleware
}

// mirror is a compiled mirror policy.
type mirror struct {
	route    string
	service  string
	share    float64 // share of requests copied, 0 to 1
	maxBody  int64
	maxIn    int64
	inFlight atomic.Int64
	send     proxy.Handler
	log      *slog.Logger
	random   func() float64 // uniform in [0, 1); safe for concurrent use

	sent, failed, dropped, skipped prometheus.Counter
}

func newMirror(route string, p *config.MirrorPolicy, send proxy.Handler, m *Metrics, log *slog.Logger, random func() float64) *mirror {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &mirror{
		route: route, service: p.Service, share: min(max(p.Percent/100, 0), 1),
		maxBody: int64(max(p.MaxBodyBytes, 0)), maxIn: int64(max(p.MaxInFlight, 1)),
		send: send, log: log, random: random,
		sent:    m.requests.WithLabelValues(route, ResultSent),
		failed:  m.requests.WithLabelValues(route, ResultFailed),
		dropped: m.requests.WithLabelValues(route, ResultDropped),
		skipped: m.requests.WithLabelValues(route, ResultSkipped),
	}
}

// middleware implements proxy.Middleware.
func (m *mirror) middleware(next proxy.Handler) proxy.Handler {
	return proxy.HandlerFunc(func(x *proxy.Exchange) error { return m.serve(x, next) })
}

// serve copies x when it is sampled and its body allows, then hands x to next.
func (m *mirror) serve(x *proxy.Exchange, next proxy.Handler) error {
	if !(m.share >= 1 || (m.share > 0 && m.random() < m.share)) {
		return next.Serve(x)
	}
	if x.Req.Upgrade != "" || x.Req.Method == "CONNECT" {
		m.skipped.Inc()
		return next.Serve(x)
	}
	switch {
	case x.Body == nil:
		m.dispatch(m.shadow(x), nil)
	case x.Req.ContentLength > m.maxBody:
		m.skipped.Inc()
	case x.Req.ContentLength >= 0:
		body := make([]byte, x.Req.ContentLength)
		n, err := io.ReadFull(x.Body, body)
		if err != nil {
			// The client sent less than it declared, or reading failed: the original request
			// meets exactly what it would have met without the policy, and is not copied.
			x.Body = io.MultiReader(bytes.NewReader(body[:n]), errReader{err})
			m.skipped.Inc()
			break
		}
		x.Body = bytes.NewReader(body)
		m.dispatch(m.shadow(x), body)
	default:
		t := &teeBody{r: x.Body, max: m.maxBody, m: m, sx: m.shadow(x)}
		x.Body = t
		err := next.Serve(x)
		if t.state.CompareAndSwap(teePending, teeAbandoned) {
			m.skipped.Inc()
		}
		return err
	}
	return next.Serve(x)
}

// shadow builds the copy of x's request head, without a body.
func (m *mirror) shadow(x *proxy.Exchange) *proxy.Exchange {
	now := time.Now()
	deadline := x.Deadline
	if deadline.IsZero() {
		deadline = now.Add(DefaultShadowTimeout)
	}
	return &proxy.Exchange{
		Req: httpmsg.Request{
			Method: x.Req.Method, Target: x.Req.Target, Path: x.Req.Path, Query: x.Req.Query,
			Host: ShadowHost(x.Req.Host), Proto: x.Req.Proto, Header: x.Req.Header.Clone(),
		},
		W:        &discardWriter{},
		Listener: x.Listener, Scheme: x.Scheme, Peer: x.Peer, PeerText: x.PeerText, ClientIP: x.ClientIP,
		ID: x.ID, Start: now, Deadline: deadline, Route: x.Route, MatchedPrefix: x.MatchedPrefix,
	}
}

// dispatch sends sx with body (nil: none) to the shadow service on a goroutine of its own, unless
// MaxInFlight copies are in flight already.
func (m *mirror) dispatch(sx *proxy.Exchange, body []byte) {
	if m.inFlight.Add(1) > m.maxIn {
		m.inFlight.Add(-1)
		m.dropped.Inc()
		return
	}
	if body != nil {
		sx.Req.ContentLength = int64(len(body))
		sx.Body = bytes.NewReader(body)
	}
	go m.run(sx)
}

// run sends one copy and records how it went.
func (m *mirror) run(sx *proxy.Exchange) {
	defer m.inFlight.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			m.failed.Inc()
			m.log.Error("mirror: sending a copy panicked", "route", m.route, "service", m.service, "panic", fmt.Sprint(r))
		}
	}()
	if err := m.send.Serve(sx); err != nil {
		m.failed.Inc()
		m.log.Debug("mirror: copy failed", "route", m.route, "service", m.service, "request_id", sx.ID, "error", err)
		return
	}
	m.sent.Inc()
}

// ShadowHost returns host (a Host or :authority value, with or without a port) with "-shadow"
// appended to its host name: "a.example:8080" becomes "a.example-shadow:8080", "[::1]:80"
// becomes "[::1]-shadow:80". An empty host stays empty.
func ShadowHost(host string) string {
	if host == "" {
		return ""
	}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		bracketed := host[0] == '[' && host[i-1] == ']'
		if bracketed || (host[0] != '[' && strings.IndexByte(host, ':') == i) {
			name, port = host[:i], host[i:]
		}
	}
	return name + "-shadow" + port
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// States of a teeBody.
const (
	teePending   int32 = iota // the body has not ended yet
	teeSent                   // the body ended within the limit and the copy went out
	teeAbandoned              // the exchange ended first, or the body was too long
)

// teeBody passes a body of unknown length through unchanged while keeping up to max+1 bytes of
// it; when the body ends within max bytes it dispatches the copy.
type teeBody struct {
	r     io.Reader
	max   int64
	buf   []byte
	over  bool
	m     *mirror
	sx    *proxy.Exchange
	state atomic.Int32
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 && !t.over {
		if int64(len(t.buf)+n) > t.max {
			t.over, t.buf = true, nil
		} else {
			t.buf = append(t.buf, p[:n]...)
		}
	}
	if err == io.EOF && !t.over && t.state.CompareAndSwap(teePending, teeSent) {
		body := t.buf
		if body == nil {
			body = []byte{}
		}
		t.m.dispatch(t.sx, body)
	}
	return n, err
}

// discardWriter is the response writer of a copy: it accepts and drops everything, at once.
type discardWriter struct{ head bool }

var _ proxy.ResponseWriter = (*discardWriter)(nil)

// WriteHead implements proxy.ResponseWriter.
func (w *discardWriter) WriteHead(resp *httpmsg.Response) error {
	if resp.Status < 100 || resp.Status >= 200 {
		w.head = true
	}
	return nil
}

// Write implements proxy.ResponseWriter.
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// Flush implements proxy.ResponseWriter.
func (w *discardWriter) Flush() error { return nil }

// Finish implements proxy.ResponseWriter.
func (w *discardWriter) Finish(httpmsg.Header) error { return nil }

// HeadWritten implements proxy.ResponseWriter.
func (w *discardWriter) HeadWritten() bool { return w.head }

// Hijack implements proxy.ResponseWriter: a copy has no connection to hand over.
func (w *discardWriter) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrNotHijackable
}
