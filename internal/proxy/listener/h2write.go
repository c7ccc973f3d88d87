package listener

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// h2PendMax is how much response body a stream holds back before sending it: a small body leaves
// with its head and END_STREAM in one write, a large one in frames as it comes.
const h2PendMax = 16 << 10

var errWindowTimeout = errors.New("listener: http2 client did not open its flow-control window in time")

// h2Writer writes one stream's response. The head is held until the first body bytes are sent or
// the response ends, so a small response is one HEADERS and one DATA frame, or a single HEADERS
// frame carrying END_STREAM.
type h2Writer struct {
	st       *h2Stream
	method   string
	head     bool // a final head was given
	headSent bool
	finished bool
	noBody   bool
	status   int
	fields   httpmsg.Header
	length   int64 // the content-length to send, -1 for none
	pend     []byte
	deadline time.Time
}

var _ proxy.ResponseWriter = (*h2Writer)(nil)

func (w *h2Writer) reset(st *h2Stream) {
	*w = h2Writer{st: st, fields: w.fields[:0], pend: w.pend[:0], length: -1}
}

// WriteHead implements proxy.ResponseWriter.
func (w *h2Writer) WriteHead(resp *httpmsg.Response) error {
	if w.head {
		return errHeadTwice
	}
	st := resp.Status
	if st < 100 || st > 999 {
		return errors.New("listener: invalid response status " + strconv.Itoa(st))
	}
	if st < 200 {
		if st == 101 {
			return proxy.ErrNotHijackable
		}
		c := w.st.c
		c.lockWrite()
		err := w.headersLocked(st, resp.Header, -1, false)
		c.unlockWrite()
		return err
	}
	w.head = true
	w.status = st
	w.fields = append(w.fields[:0], resp.Header...)
	w.noBody = !httpmsg.BodyAllowed(w.method, st)
	if resp.ContentLength >= 0 && (!w.noBody || w.method == "HEAD" && st != 204 && st != 304) {
		w.length = resp.ContentLength
	}
	// As over HTTP/1, the deadline bounds writing the response, with a short floor for the error
	// response that says it passed: a client that never opens its flow-control window cannot
	// hold the exchange and the upstream connection.
	w.deadline = w.st.x.Deadline
	if floor := time.Now().Add(responseGrace); !w.deadline.IsZero() && w.deadline.Before(floor) {
		w.deadline = floor
	}
	return nil
}

// Write implements proxy.ResponseWriter.
func (w *h2Writer) Write(p []byte) (int, error) {
	if !w.head {
		return 0, errNoHead
	}
	if w.noBody {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, errBodyNotAllowd
	}
	if len(w.pend)+len(p) <= h2PendMax {
		w.pend = append(w.pend, p...)
		return len(p), nil
	}
	if err := w.send(p, false, nil); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush implements proxy.ResponseWriter.
func (w *h2Writer) Flush() error {
	if !w.head || w.finished || w.headSent && len(w.pend) == 0 {
		return nil
	}
	return w.send(nil, false, nil)
}

// Finish implements proxy.ResponseWriter.
func (w *h2Writer) Finish(trailer httpmsg.Header) error {
	if !w.head {
		return errNoHead
	}
	if w.finished {
		return nil
	}
	w.finished = true
	return w.send(nil, true, trailer)
}

// HeadWritten implements proxy.ResponseWriter.
func (w *h2Writer) HeadWritten() bool { return w.head }

// Hijack implements proxy.ResponseWriter; HTTP/2 streams cannot be hijacked.
func (w *h2Writer) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrNotHijackable
}

// send writes what is pending, then p, ending the stream when end is set (with trailer fields
// when there are any).
func (w *h2Writer) send(p []byte, end bool, trailer httpmsg.Header) error {
	c := w.st.c
	c.lockWrite()
	err := w.sendLocked(p, end, trailer)
	c.unlockWrite()
	w.pend = w.pend[:0]
	return err
}

func (w *h2Writer) sendLocked(p []byte, end bool, trailer httpmsg.Header) error {
	err := w.writeLocked(p, end, trailer)
	if err == nil && end {
		w.st.localDone = true
	}
	return err
}

func (w *h2Writer) writeLocked(p []byte, end bool, trailer httpmsg.Header) error {
	dataEnd := end && len(trailer) == 0
	if !w.headSent {
		w.headSent = true
		bodyless := len(w.pend) == 0 && len(p) == 0
		if err := w.headersLocked(w.status, w.fields, w.length, dataEnd && bodyless); err != nil {
			return err
		}
		if dataEnd && bodyless {
			return nil
		}
	}
	if err := w.dataLocked(w.pend, dataEnd && len(p) == 0); err != nil {
		return err
	}
	if len(p) > 0 {
		if err := w.dataLocked(p, dataEnd); err != nil {
			return err
		}
	}
	if end && len(trailer) > 0 {
		return w.headersLocked(0, trailer, -1, true)
	}
	return nil
}

// usableLocked reports why nothing can be sent on the stream any more, or nil.
func (w *h2Writer) usableLocked() error {
	c := w.st.c
	switch {
	case c.writeErr != nil:
		return c.writeErr
	case w.st.resetSent:
		return errH2StreamReset
	}
	return nil
}

// dataLocked sends p as DATA frames within the client's windows, waiting for it to open them.
// With p empty it sends only an END_STREAM when end is set.
func (w *h2Writer) dataLocked(p []byte, end bool) error {
	c, st := w.st.c, w.st
	if len(p) == 0 {
		if !end {
			return nil
		}
		if err := w.usableLocked(); err != nil {
			return err
		}
		return c.fr.WriteData(st.id, true, nil)
	}
	for len(p) > 0 {
		if err := w.usableLocked(); err != nil {
			return err
		}
		n := min(int64(len(p)), int64(c.peerFrameSize), st.sendWindow, c.sendWindow)
		if n <= 0 {
			if err := w.awaitWindowLocked(); err != nil {
				return err
			}
			continue
		}
		last := int(n) == len(p)
		if err := c.fr.WriteData(st.id, end && last, p[:n]); err != nil {
			return err
		}
		st.sendWindow -= n
		c.sendWindow -= n
		p = p[n:]
	}
	return nil
}

// awaitWindowLocked waits, with c.mu released, until a window update, a reset, the connection's
// end or the response deadline. What was written so far is flushed first: the client may be
// waiting for it before it opens the window.
func (w *h2Writer) awaitWindowLocked() error {
	c := w.st.c
	ch := c.windowWaitLocked()
	c.flushLocked()
	c.mu.Unlock()
	var err error
	if w.deadline.IsZero() {
		<-ch
	} else {
		t := time.NewTimer(time.Until(w.deadline))
		select {
		case <-ch:
		case <-t.C:
			err = errWindowTimeout
		}
		t.Stop()
	}
	c.mu.Lock()
	if err != nil {
		c.resetLocked(w.st.id, http2.ErrCodeCancel)
	}
	return err
}

// headersLocked encodes and sends a header block: a response head (status set) or trailers
// (status 0), split into CONTINUATION frames as the client's frame size requires.
func (w *h2Writer) headersLocked(status int, fields httpmsg.Header, length int64, end bool) error {
	if err := w.usableLocked(); err != nil {
		return err
	}
	c := w.st.c
	c.hbuf = c.hbuf[:0]
	if status != 0 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
	}
	for _, f := range fields {
		name := lowerName(f.Name)
		switch name {
		case "connection", "transfer-encoding", "keep-alive", "upgrade", "proxy-connection", "content-length":
			continue // connection-specific in HTTP/2, or framing that is ours to write
		}
		_ = c.henc.WriteField(hpack.HeaderField{Name: name, Value: f.Value})
	}
	if length >= 0 {
		_ = c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(length, 10)})
	}
	block := c.hbuf
	frag := min(len(block), int(c.peerFrameSize))
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: w.st.id, BlockFragment: block[:frag], EndStream: end, EndHeaders: frag == len(block),
	})
	for block = block[frag:]; err == nil && len(block) > 0; block = block[frag:] {
		frag = min(len(block), int(c.peerFrameSize))
		err = c.fr.WriteContinuation(w.st.id, frag == len(block), block[:frag])
	}
	return err
}

// statuses holds the text of every status code, so sending one does not format it.
var statuses = func() (t [1000]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string { return statuses[code] }

// lowerName returns a field name in the lower case HTTP/2 requires, without allocating for names
// already lower case or common ones.
func lowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			if l, ok := commonLower[name]; ok {
				return l
			}
			return strings.ToLower(name)
		}
	}
	return name
}

// commonLower maps the canonical spelling of common response fields to lower case.
var commonLower = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"Accept-Ranges", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
		"Access-Control-Allow-Headers", "Access-Control-Allow-Methods", "Access-Control-Expose-Headers",
		"Access-Control-Max-Age", "Age", "Allow", "Alt-Svc", "Cache-Control", "Content-Disposition",
		"Content-Encoding", "Content-Language", "Content-Length", "Content-Location", "Content-Range",
		"Content-Security-Policy", "Content-Type", "Connection", "Date", "Etag", "ETag", "Expires",
		"Grpc-Encoding", "Grpc-Message", "Grpc-Status", "Keep-Alive", "Last-Modified", "Link",
		"Location", "Proxy-Connection", "Referrer-Policy", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Trailer", "Transfer-Encoding", "Upgrade", "Vary", "Via",
		"Www-Authenticate", "WWW-Authenticate", "X-Content-Type-Options", "X-Frame-Options",
		"X-Meshgate-Reason", "X-Request-Id", "X-Ratelimit-Limit", "X-Ratelimit-Remaining",
		"X-Ratelimit-Reset", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
	} {
		m[n] = strings.ToLower(n)
	}
	return m
}()

// h2Body is a stream's request body as the exchange reads it: bytes the frame loop received,
// handed over under the connection's lock, with flow-control credit returned as they are read.
type h2Body struct {
	st      *h2Stream
	limit   int64
	read    int64
	started bool
}

// Read implements io.Reader.
func (b *h2Body) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	if !b.started {
		b.started = true
		if st.expect100 && !st.w.head {
			c.lockWrite()
			err := st.w.headersLocked(100, nil, -1, false)
			c.unlockWrite()
			if err != nil {
				return 0, err
			}
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	c.lockWrite()
	for {
		if n := len(st.body) - st.off; n > 0 {
			n = copy(p, st.body[st.off:])
			st.off += n
			if st.off == len(st.body) {
				st.body, st.off = st.body[:0], 0
			}
			c.recvBuffered -= int64(n)
			c.creditLocked(st, int32(n))
			c.unlockWrite()
			b.read += int64(n)
			if b.limit >= 0 && b.read > b.limit {
				return 0, proxy.Fail(413, proxy.ReasonBodyTooLarge, errors.New("request body exceeds "+strconv.FormatInt(b.limit, 10)+" bytes"))
			}
			return n, nil
		}
		if st.err != nil {
			err := st.err
			c.unlockWrite()
			return 0, err
		}
		if st.remoteDone {
			c.unlockWrite()
			return 0, io.EOF
		}
		c.unlockWrite()
		if timer == nil && !st.x.Deadline.IsZero() {
			// As over HTTP/1, the deadline (the route may have changed it since the head was
			// read) bounds the wait for the body: a client sending it slowly cannot hold the
			// exchange.
			timer = time.NewTimer(time.Until(st.x.Deadline))
		}
		if timer != nil {
			select {
			case <-st.signal:
			case <-timer.C:
				return 0, proxy.Fail(408, proxy.ReasonRequestTimeout, errors.New("listener: http2 request body not received in time"))
			}
		} else {
			<-st.signal
		}
		c.lockWrite()
	}
}

// Trailer returns the request's trailer fields once the body was read to the end.
func (b *h2Body) Trailer() httpmsg.Header {
	c := b.st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.st.remoteDone && len(b.st.trailer) > 0 {
		return b.st.trailer
	}
	return nil
}
