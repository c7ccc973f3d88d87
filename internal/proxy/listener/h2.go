package listener

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// h2Adapter serves HTTP/2 streams (from x/net/http2) as engine exchanges.
type h2Adapter struct {
	l *Listener
}

var exchanges = sync.Pool{New: func() any { return new(h2Exchange) }}

// h2Exchange keeps an exchange and its writer together so a stream allocates neither.
type h2Exchange struct {
	x proxy.Exchange
	w h2Writer
	b h2Body
}

// ServeHTTP implements http.Handler for one HTTP/2 stream.
func (a *h2Adapter) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s := a.l.settings.Load()
	ex := exchanges.Get().(*h2Exchange)
	defer exchanges.Put(ex)
	x := &ex.x
	x.Reset()
	x.Ctx = r.Context()
	x.Start = time.Now()
	x.Listener = a.l.name
	x.Scheme = "http"
	if r.TLS != nil {
		x.Scheme = "https"
		if len(r.TLS.VerifiedChains) > 0 {
			x.PeerCertificates = r.TLS.PeerCertificates
		}
	}
	if id := peerIDFrom(r.Context()); id != "" {
		// A mesh peer's connection (the stream's :scheme is "http" between sidecars, so r.TLS
		// is not set even though the connection is mutual TLS).
		x.PeerID = id
		x.Scheme = "https"
	}
	x.Peer = addrPort(stringAddr(r.RemoteAddr))
	x.PeerText = hostOf(r.RemoteAddr)
	if s.RequestTimeout > 0 {
		x.Deadline = x.Start.Add(s.RequestTimeout)
	}
	req := &x.Req
	req.Method = r.Method
	req.Target = r.RequestURI
	req.Path, req.Query, _ = strings.Cut(r.RequestURI, "?")
	req.Host = r.Host
	req.Proto = httpmsg.HTTP2
	req.ContentLength = r.ContentLength
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header = append(req.Header, httpmsg.Field{Name: k, Value: v})
		}
	}
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
		ex.b = h2Body{r: r.Body, limit: s.MaxBodyBytes, rw: rw, x: x}
		x.Body = &ex.b
	} else {
		req.ContentLength = 0
	}
	ex.w = h2Writer{rw: rw, method: r.Method, x: x}
	x.W = &ex.w
	maxFields := s.Limits.MaxHeaderCount
	if maxFields <= 0 {
		maxFields = http1.DefaultMaxHeaderCount
	}
	if len(req.Header) > maxFields {
		// x/net/http2 bounds only the bytes of a header list: enforce the field count the HTTP/1
		// parser enforces, so that HTTP/2 cannot carry more fields upstream than HTTP/1 can.
		a.reject(x, proxy.Fail(431, http1.ReasonTooManyHeaders, errTooManyFields))
		return
	}
	a.l.h().ServeExchange(x)
	if x.Err != nil && ex.w.head && !ex.w.finished {
		// The response is broken mid-stream: reset the stream so the client sees the failure.
		panic(http.ErrAbortHandler)
	}
}

var errTooManyFields = errors.New("listener: too many header fields")

// reject answers a request refused before routing, and has it recorded like any other.
func (a *h2Adapter) reject(x *proxy.Exchange, err *proxy.Error) {
	x.ClientIP = x.Peer.Addr()
	if h, ok := a.l.h().(interface {
		RejectExchange(x *proxy.Exchange, err *proxy.Error)
	}); ok {
		h.RejectExchange(x, err)
		return
	}
	_ = proxy.RespondError(x, err)
}

// hostOf returns the address part of "host:port" or "[v6]:port" without allocating.
func hostOf(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return hostport
	}
	host := hostport[:i]
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if strings.HasPrefix(host, "::ffff:") && strings.Count(host, ".") == 3 {
		host = host[len("::ffff:"):] // an IPv4 client on a dual-stack socket
	}
	return host
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// h2Body enforces the body limit and the exchange's deadline on an HTTP/2 request body.
type h2Body struct {
	r       io.Reader
	limit   int64
	read    int64
	rw      http.ResponseWriter
	x       *proxy.Exchange
	started bool
}

// deadliner is what x/net/http2's ResponseWriter offers to bound one stream's reads and writes.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func (b *h2Body) Read(p []byte) (int, error) {
	if !b.started {
		// As over HTTP/1, the deadline (the route may have changed it since the head was read)
		// bounds the wait for the body: a client sending it slowly cannot hold the exchange.
		b.started = true
		if d, ok := b.rw.(deadliner); ok {
			_ = d.SetReadDeadline(b.x.Deadline)
		}
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.limit >= 0 && b.read > b.limit {
		return 0, proxy.Fail(413, proxy.ReasonBodyTooLarge, io.ErrShortBuffer)
	}
	return n, err
}

// h2Writer adapts http.ResponseWriter.
type h2Writer struct {
	rw       http.ResponseWriter
	x        *proxy.Exchange
	method   string
	head     bool
	finished bool
}

// WriteHead implements proxy.ResponseWriter.
func (w *h2Writer) WriteHead(resp *httpmsg.Response) error {
	if w.head {
		return errHeadTwice
	}
	h := w.rw.Header()
	// One backing array holds every value: a field gets a one-element window into it (capacity
	// one, so a repeated name appends elsewhere instead of overwriting its neighbour).
	vals := make([]string, len(resp.Header))
	for i, f := range resp.Header {
		switch {
		case httpmsg.EqualFold(f.Name, "Connection"), httpmsg.EqualFold(f.Name, "Transfer-Encoding"),
			httpmsg.EqualFold(f.Name, "Keep-Alive"), httpmsg.EqualFold(f.Name, "Upgrade"),
			httpmsg.EqualFold(f.Name, "Proxy-Connection"), httpmsg.EqualFold(f.Name, "Content-Length"):
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		if prev, ok := h[k]; ok {
			h[k] = append(prev, f.Value)
			continue
		}
		vals[i] = f.Value
		h[k] = vals[i : i+1 : i+1]
	}
	st := resp.Status
	if st >= 100 && st < 200 {
		if st == 101 {
			return proxy.ErrNotHijackable
		}
		w.rw.WriteHeader(st)
		return nil
	}
	if resp.ContentLength >= 0 && httpmsg.BodyAllowed(w.method, st) {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	// As over HTTP/1, the deadline bounds writing the response, with a short floor for the error
	// response that says it passed: a client that never opens its flow-control window cannot
	// hold the exchange and the upstream connection.
	if dl, ok := w.rw.(deadliner); ok {
		d := w.x.Deadline
		if floor := time.Now().Add(responseGrace); !d.IsZero() && d.Before(floor) {
			d = floor
		}
		_ = dl.SetWriteDeadline(d)
	}
	w.head = true
	w.rw.WriteHeader(st)
	return nil
}

// Write implements proxy.ResponseWriter.
func (w *h2Writer) Write(p []byte) (int, error) {
	if !w.head {
		return 0, errNoHead
	}
	return w.rw.Write(p)
}

// Flush implements proxy.ResponseWriter.
func (w *h2Writer) Flush() error {
	if f, ok := w.rw.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// Finish implements proxy.ResponseWriter.
func (w *h2Writer) Finish(trailer httpmsg.Header) error {
	w.finished = true
	h := w.rw.Header()
	for _, f := range trailer {
		k := http.TrailerPrefix + http.CanonicalHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	return nil
}

// HeadWritten implements proxy.ResponseWriter.
func (w *h2Writer) HeadWritten() bool { return w.head }

// Hijack implements proxy.ResponseWriter; HTTP/2 streams cannot be hijacked.
func (w *h2Writer) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrNotHijackable
}
