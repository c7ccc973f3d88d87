package listener

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// maxDrainBytes is how much of an unread request body is discarded to keep a connection alive.
const maxDrainBytes = 256 << 10

// h1Conn is one downstream HTTP/1 connection. Requests on it are served in turn by the goroutine
// that accepted it; the exchange, writer and body reader are reused for every request.
type h1Conn struct {
	peerInfo
	l     *Listener
	c     net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	state *connState
	dl    proxy.Deadlines
	x     proxy.Exchange
	w     h1Writer
	body  h1Body
}

func (l *Listener) serveH1(c net.Conn, br *bufio.Reader, state *connState) {
	hc := &h1Conn{peerInfo: newPeerInfo(c), l: l, c: c, br: br, bw: bufio.NewWriterSize(c, 4<<10), state: state}
	hc.dl.Forget() // the listener may have set deadlines for the TLS handshake or the sniffing
	hc.serve()
}

func (hc *h1Conn) serve() {
	defer func() {
		if !hc.w.hijacked {
			_ = hc.c.Close()
		}
	}()
	for first := true; ; first = false {
		s := hc.l.settings.Load()
		if !first {
			if !hc.l.setIdle(hc.state, true) {
				return
			}
			hc.dl.SetRead(hc.c, time.Now().Add(s.IdleTimeout))
			if hc.br.Buffered() == 0 {
				runtime.Gosched()
			}
			if _, err := hc.br.Peek(1); err != nil {
				return // idle timeout, or the client closed: both are normal ends
			}
			// A shutdown that began while this request was arriving lets it finish, then closes.
			hc.l.setIdle(hc.state, false)
		}
		if first || !headBuffered(hc.br) {
			// The head must then arrive within the header timeout. One that arrived whole with
			// its first byte needs no deadline change.
			hc.dl.SetRead(hc.c, time.Now().Add(s.ReadHeaderTimeout))
		}
		if !hc.serveOne(s) {
			return
		}
	}
}

// serveOne reads and serves one request. It reports whether the connection may carry another.
func (hc *h1Conn) serveOne(s *Settings) bool {
	x := &hc.x
	x.Reset()
	n, err := hc.readHead(s, &x.Req)
	if err != nil {
		if n > 0 || !isQuietEnd(err) {
			hc.rejectHead(err)
		}
		return false
	}
	if x.Req.Upgrade != "" && httpmsg.HasToken(x.Req.Upgrade, "h2c") {
		// h2c switches this very connection to HTTP/2 (deprecated by RFC 9113 §3.1). Passed on,
		// it would let an upstream that accepts it take the client's connection past routing and
		// filters. Serve the request as plain HTTP/1.1: Upgrade is hop-by-hop and dropped anyway.
		x.Req.Upgrade = ""
		x.Req.Header.Del("HTTP2-Settings")
	}
	hc.l.startExchange(x, &hc.peerInfo, s)
	// The write deadline bounds the response; the body's reader sets the read deadline when it
	// starts, and a request without a body reads nothing more until the next head.
	hc.dl.SetWrite(hc.c, x.Deadline)
	hc.w.reset(hc, &x.Req)
	x.W = &hc.w
	x.Body = nil
	if x.Req.ContentLength != 0 {
		hc.body.reset(hc, &x.Req, s.MaxBodyBytes)
		x.Body = &hc.body
	}
	hc.l.h().ServeExchange(x)
	if hc.w.hijacked {
		return false
	}
	if !hc.w.finished || hc.w.closeAfter || x.Req.Close || hc.l.closing.Load() {
		if hc.w.finished {
			_ = hc.bw.Flush()
		}
		return false
	}
	if x.Req.ContentLength != 0 && !hc.body.done {
		if x.Req.Expect100 && !hc.body.continued {
			return false // the client has not sent the body; we cannot know what it will do
		}
		hc.dl.SetRead(hc.c, time.Now().Add(time.Second))
		if _, err := io.CopyN(io.Discard, &hc.body, maxDrainBytes); err != io.EOF {
			return false
		}
	}
	return true
}

// readHead reads one request head into req. n is how many bytes of it had arrived.
func (hc *h1Conn) readHead(s *Settings, req *httpmsg.Request) (int, error) {
	parse := func(buf []byte) (int, error) { return http1.ParseRequest(buf, s.Limits, req) }
	limit := s.Limits.MaxHeaderBytes
	if limit <= 0 {
		limit = http1.DefaultMaxHeaderBytes
	}
	for {
		n, err := http1.ReadHead(hc.br, parse)
		if !errors.Is(err, http1.ErrHeadTooLarge) {
			return n, err
		}
		if hc.br.Size() >= limit+4 {
			return n, &http1.ParseError{Status: 431, Reason: proxy.ReasonHeaderTooLarge, Msg: "request head too large"}
		}
		hc.growReader(limit + 4)
	}
}

// growReader replaces the 4 KiB read buffer with one that can hold the largest head allowed. This
// is the rare path: most heads fit the small buffer.
func (hc *h1Conn) growReader(size int) {
	buffered, _ := hc.br.Peek(hc.br.Buffered())
	pending := append([]byte(nil), buffered...)
	hc.br = bufio.NewReaderSize(io.MultiReader(&byteReader{b: pending}, hc.c), size)
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// rejectHead answers a request whose head could not be read, then the connection closes.
func (hc *h1Conn) rejectHead(err error) {
	status, reason := 400, proxy.ReasonBadRequest
	var pe *http1.ParseError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		status, reason = pe.Status, pe.Reason
	case errors.As(err, &ne) && ne.Timeout():
		status, reason = 408, proxy.ReasonRequestTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return
	}
	x := &hc.x
	x.Reset()
	x.Start = time.Now()
	x.Listener = hc.l.name
	x.Scheme = hc.scheme
	x.Peer = hc.peer
	x.ClientIP = hc.peer.Addr()
	x.Req.Method = "GET" // the real one may be unknown; a body is allowed on the error response
	x.Req.Proto = httpmsg.HTTP11
	hc.w.reset(hc, &x.Req)
	hc.w.closeAfter = true
	x.W = &hc.w
	hc.dl.SetWrite(hc.c, time.Now().Add(time.Second))
	hc.l.reject(x, proxy.Fail(status, reason, err))
}

// headBuffered reports whether a whole request head is already in br's buffer.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, crlf2) || bytes.Contains(b, lf2)
}

var crlf2, lf2 = []byte("\r\n\r\n"), []byte("\n\n")

func isQuietEnd(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (errors.As(err, &ne) && ne.Timeout())
}

// h1Body reads one request body with its framing, answering 100-continue on first read and
// enforcing the body size limit.
type h1Body struct {
	hc        *h1Conn
	r         io.Reader
	fixed     io.LimitedReader
	chunked   *http1.ChunkedReader
	started   bool
	expect    bool
	continued bool
	limit     int64
	read      int64
	done      bool
}

func (b *h1Body) reset(hc *h1Conn, req *httpmsg.Request, limit int64) {
	*b = h1Body{hc: hc, expect: req.Expect100, limit: limit}
	if req.Chunked {
		b.chunked = http1.NewChunkedReader(hc.br, http1.ChunkLimits{})
		b.r = b.chunked
	} else {
		b.fixed = io.LimitedReader{R: hc.br, N: req.ContentLength}
		b.r = &b.fixed
	}
}

// Read implements io.Reader.
func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	if !b.started {
		// The route may have changed the exchange's deadline since the head was read.
		b.started = true
		b.hc.dl.SetRead(b.hc.c, b.hc.x.Deadline)
	}
	if b.expect && !b.continued {
		b.continued = true
		if !b.hc.w.HeadWritten() {
			_, _ = b.hc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if err := b.hc.bw.Flush(); err != nil {
				return 0, err
			}
		}
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.limit >= 0 && b.read > b.limit {
		b.done = true
		b.hc.w.closeAfter = true
		return 0, proxy.Fail(413, proxy.ReasonBodyTooLarge, errors.New("request body exceeds "+strconv.FormatInt(b.limit, 10)+" bytes"))
	}
	if err == io.EOF {
		b.done = true
		if b.chunked == nil && b.read < b.hc.x.Req.ContentLength {
			return n, io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF {
		b.hc.w.closeAfter = true
		var pe *http1.ParseError
		if errors.As(err, &pe) {
			return n, proxy.Fail(pe.Status, pe.Reason, err)
		}
	}
	return n, err
}

// Trailer returns the request's trailer fields once the body was read to the end.
func (b *h1Body) Trailer() httpmsg.Header {
	if b.chunked != nil && b.done {
		return b.chunked.Trailer()
	}
	return nil
}
