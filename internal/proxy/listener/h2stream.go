package listener

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// h2Stream is one HTTP/2 request/response exchange. Streams are pooled: the exchange, writer and
// buffers are reused.
type h2Stream struct {
	c      *h2Conn
	id     uint32
	cancel context.CancelFunc
	signal chan struct{} // capacity 1: body bytes arrived or the stream ended

	// Guarded by c.mu.
	sendWindow  int64
	recvWindow  int32
	unackedRecv int32
	remoteDone  bool // the client's END_STREAM arrived
	localDone   bool // the response's END_STREAM was written
	resetSent   bool // a reset went either way: no frame may be sent on the stream any more
	forgotten   bool // removed from the connection's stream table
	err         error
	body        []byte // received, unread request body bytes from off
	off         int
	received    int64
	declared    int64 // the request's content-length, -1 when it has none
	trailer     httpmsg.Header
	expect100   bool
	reject      *proxy.Error // the answer to a request refused before routing, or nil

	x proxy.Exchange
	w h2Writer
	b h2Body
}

var h2Streams = sync.Pool{New: func() any { return &h2Stream{signal: make(chan struct{}, 1)} }}

var (
	errBodyLength    = errors.New("listener: http2 request body disagrees with its content-length")
	errTooManyFields = errors.New("listener: too many header fields")
	errHeadTooLarge  = errors.New("listener: http2 header list too large")
)

// signalLocked wakes the stream's body reader.
func (st *h2Stream) signalLocked() {
	select {
	case st.signal <- struct{}{}:
	default:
	}
}

// abortLocked ends the stream's exchange with err: its body reader and writer fail, its context is
// cancelled.
func (st *h2Stream) abortLocked(err error) {
	if st.err == nil {
		st.err = err
	}
	st.signalLocked()
	if st.cancel != nil {
		st.cancel()
	}
}

// forgetLocked removes st from the connection's table, returning the window its unread body
// holds.
func (c *h2Conn) forgetLocked(st *h2Stream) {
	if st.forgotten {
		return
	}
	st.forgotten = true
	delete(c.streams, st.id)
	if n := len(st.body) - st.off; n > 0 {
		c.recvBuffered -= int64(n)
		c.creditLocked(nil, int32(n))
	}
	st.body, st.off = st.body[:0], 0
}

// onHeaders opens a stream (or takes a stream's trailers) and starts its exchange.
func (c *h2Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients open odd streams only
	}
	c.mu.Lock()
	if st := c.streams[id]; st != nil {
		err := c.trailersLocked(st, f)
		c.mu.Unlock()
		return err
	}
	if id <= c.maxStreamID {
		c.mu.Unlock()
		if f.StreamEnded() && len(f.PseudoFields()) == 0 {
			return nil // trailers that crossed the stream's reset
		}
		return http2.ConnectionError(http2.ErrCodeStreamClosed) // a stream that already ended
	}
	c.maxStreamID = id
	if c.goAway {
		c.mu.Unlock()
		return nil // after GOAWAY, new streams are not served
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.mu.Unlock()
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeProtocol}
	}
	if c.running >= c.maxStreams {
		// Exchanges of streams the client reset still count until they end: resetting streams
		// cannot make the proxy start more work than the limit (HTTP/2 rapid reset).
		c.refused++
		refused := c.refused
		c.mu.Unlock()
		if refused > 2*c.maxStreams+100 {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		return http2.StreamError{StreamID: id, Code: http2.ErrCodeRefusedStream}
	}
	// Settings change only in this goroutine, the frame loop: the window holds until the stream
	// is in the table.
	window := c.peerWindow
	c.mu.Unlock()

	st := h2Streams.Get().(*h2Stream)
	st.reset(c, id, window)
	code, reject := st.readRequest(f)
	if code != http2.ErrCodeNo {
		st.release()
		return http2.StreamError{StreamID: id, Code: code}
	}
	c.mu.Lock()
	c.streams[id] = st
	c.running++
	c.refused = 0
	c.mu.Unlock()
	st.reject = reject
	select {
	case c.work <- st: // an idle worker of this connection takes it
	default:
		c.handlers.Add(1)
		go c.worker(st)
	}
	return nil
}

// maxIdleWorkers is how many goroutines a connection keeps waiting for its next stream. A worker
// keeps the stack the engine grew it to: a new goroutine per stream would grow (copy) its stack
// again each time.
const maxIdleWorkers = 64

// worker serves st, then the connection's next streams, until the connection ends or enough
// other workers are idle.
func (c *h2Conn) worker(st *h2Stream) {
	defer c.handlers.Done()
	for {
		c.runStream(st)
		if c.idleWorkers.Add(1) > maxIdleWorkers {
			c.idleWorkers.Add(-1)
			return
		}
		next, ok := <-c.work
		c.idleWorkers.Add(-1)
		if !ok {
			return
		}
		st = next
	}
}

// trailersLocked takes the trailer fields that end a request body.
func (c *h2Conn) trailersLocked(st *h2Stream, f *http2.MetaHeadersFrame) error {
	if st.remoteDone && st.localDone {
		// Closed both ways, though its exchange has not yet let go of it (RFC 9113 §5.1).
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	if st.remoteDone || st.resetSent {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeStreamClosed}
	}
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 || f.Truncated {
		st.abortLocked(errBodyLength)
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
	}
	for _, hf := range f.RegularFields() {
		st.trailer = append(st.trailer, httpmsg.Field{Name: hf.Name, Value: hf.Value})
	}
	if st.declared >= 0 && st.received != st.declared {
		return c.malformedLocked(st)
	}
	st.remoteDone = true
	st.signalLocked()
	return nil
}

// reset prepares a pooled stream for stream id of c, whose send window starts at window.
func (st *h2Stream) reset(c *h2Conn, id uint32, window int32) {
	st.c, st.id = c, id
	st.sendWindow = int64(window)
	st.recvWindow, st.unackedRecv = h2StreamWindow, 0
	st.remoteDone, st.localDone, st.resetSent, st.forgotten = false, false, false, false
	st.err, st.received, st.declared = nil, 0, -1
	st.body, st.off = st.body[:0], 0
	st.trailer = st.trailer[:0]
	st.expect100 = false
	st.x.Reset()
	st.w.reset(st)
	st.b = h2Body{st: st}
	select {
	case <-st.signal:
	default:
	}
}

// release returns the stream to the pool.
func (st *h2Stream) release() {
	if st.cancel != nil {
		st.cancel()
		st.cancel = nil
	}
	st.c = nil
	st.x.Ctx = nil
	st.reject = nil
	h2Streams.Put(st)
}

// readRequest fills the stream's request from its header block. A malformed request (RFC 9113
// §8.1.1) gets a stream error code; one over the proxy's limits gets the error it is answered with.
func (st *h2Stream) readRequest(f *http2.MetaHeadersFrame) (http2.ErrCode, *proxy.Error) {
	c := st.c
	s := c.l.settings.Load()
	x := &st.x
	req := &x.Req
	var method, path, scheme, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		default:
			return http2.ErrCodeProtocol, nil // :protocol: extended CONNECT is not offered
		}
	}
	if method == "" || !http1.ValidFieldName(method) {
		return http2.ErrCodeProtocol, nil
	}
	if method == "CONNECT" {
		if path != "" || scheme != "" || authority == "" {
			return http2.ErrCodeProtocol, nil
		}
		path = authority
	} else if scheme == "" || path == "" || path[0] != '/' && path != "*" {
		return http2.ErrCodeProtocol, nil
	}
	host := authority
	cookies := 0
	for _, hf := range f.RegularFields() {
		switch hf.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return http2.ErrCodeProtocol, nil // connection-specific (RFC 9113 §8.2.2)
		case "te":
			if hf.Value != "trailers" {
				return http2.ErrCodeProtocol, nil
			}
		case "content-length":
			n, ok := parseContentLength(hf.Value)
			if !ok || st.declared >= 0 && st.declared != n {
				return http2.ErrCodeProtocol, nil
			}
			st.declared = n
		case "host":
			if host == "" {
				host = hf.Value
			}
			continue // carried as the request's Host
		case "cookie":
			cookies++
		case "expect":
			st.expect100 = httpmsg.EqualFold(hf.Value, "100-continue")
		}
		req.Header = append(req.Header, httpmsg.Field{Name: hf.Name, Value: hf.Value})
	}
	if cookies > 1 {
		joinCookies(req)
	}
	req.Method = method
	req.Target = path
	req.Path, req.Query, _ = strings.Cut(path, "?")
	req.Host = host
	req.Proto = httpmsg.HTTP2
	if f.StreamEnded() {
		if st.declared > 0 {
			return http2.ErrCodeProtocol, nil
		}
		st.remoteDone = true
		req.ContentLength = 0
	} else {
		req.ContentLength = st.declared
	}

	c.l.startExchange(x, &c.peerInfo, s)
	x.Ctx, st.cancel = context.WithCancel(c.ctx)
	x.W = &st.w
	x.Body = nil
	if !st.remoteDone && req.ContentLength != 0 {
		st.b.limit = s.MaxBodyBytes
		x.Body = &st.b
	}
	st.w.method = method
	switch {
	case f.Truncated:
		return http2.ErrCodeNo, proxy.Fail(431, proxy.ReasonHeaderTooLarge, errHeadTooLarge)
	case len(req.Header) > c.maxFields:
		// The HPACK decoder bounds only the bytes of a header list: the field count is bounded as
		// the HTTP/1 parser bounds it, so HTTP/2 cannot carry more fields upstream than HTTP/1.
		return http2.ErrCodeNo, proxy.Fail(431, http1.ReasonTooManyHeaders, errTooManyFields)
	}
	return http2.ErrCodeNo, nil
}

// parseContentLength parses a content-length value: digits only, at most 18 of them.
func parseContentLength(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// joinCookies merges the cookie fields HTTP/2 may split into the one field HTTP/1 allows
// (RFC 9113 §8.2.3), at the first one's place.
func joinCookies(req *httpmsg.Request) {
	first := -1
	var b strings.Builder
	out := req.Header[:0]
	for _, f := range req.Header {
		if f.Name != "cookie" {
			out = append(out, f)
			continue
		}
		if first < 0 {
			first = len(out)
			out = append(out, f)
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Value)
	}
	out[first].Value = b.String()
	req.Header = out
}

// runStream serves the stream's exchange, then ends the stream.
func (c *h2Conn) runStream(st *h2Stream) {
	x := &st.x
	if st.reject != nil {
		x.ClientIP = x.Peer.Addr()
		c.l.reject(x, st.reject)
	} else {
		c.l.h().ServeExchange(x)
	}
	c.lockWrite()
	if !st.w.finished && !st.resetSent && c.writeErr == nil {
		// The exchange ended without completing its response (the upstream broke it): the
		// client must see the stream fail rather than end.
		c.resetLocked(st.id, http2.ErrCodeInternal)
	}
	if !st.forgotten {
		if !st.remoteDone && !st.resetSent && c.writeErr == nil {
			// The response is complete before the request: the client may stop sending.
			st.resetSent = true
			_ = c.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
		}
		c.forgetLocked(st)
	}
	c.running--
	if c.running == 0 {
		c.idleSince = time.Now()
		if c.goAway {
			c.closeGracefullyLocked()
		}
	}
	c.unlockWrite()
	st.release()
}

// closeGracefullyLocked ends a connection that sent GOAWAY once its last stream is done: what is
// buffered is sent, the write side closed, and the reader given a moment to see the client go.
func (c *h2Conn) closeGracefullyLocked() {
	c.flushLocked()
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := unwrapConn(c.c).(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_ = c.c.SetReadDeadline(time.Now().Add(h2GoAwayDrain))
}
