package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// HTTP1Options configure an HTTP/1.1 transport.
type HTTP1Options struct {
	// MaxIdlePerEndpoint is the most idle connections kept per endpoint.
	MaxIdlePerEndpoint int
	// MaxConnsPerEndpoint is the most connections open to one endpoint at once.
	MaxConnsPerEndpoint int
	// IdleTimeout closes a pooled connection idle for this long.
	IdleTimeout time.Duration
	// ConnectTimeout bounds establishing a connection.
	ConnectTimeout time.Duration
	// Hooks report connection events.
	Hooks Hooks
}

// readBufferSize is the read buffer of an upstream connection, and so the largest response head
// accepted (like nginx's proxy_buffer_size, a larger head is a protocol error).
const readBufferSize = 16 << 10

// HTTP1 is a pooled HTTP/1.1 client transport: keep-alive connections per endpoint, reused LIFO
// (the warmest connection first), closed when idle too long.
type HTTP1 struct {
	opts   HTTP1Options
	dialer net.Dialer
	limits http1.Limits

	mu     sync.Mutex
	pools  map[string]*connPool
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

var _ Transport = (*HTTP1)(nil)

// NewHTTP1 returns a transport and starts its idle-connection sweeper; Close stops it.
func NewHTTP1(opts HTTP1Options) *HTTP1 {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 90 * time.Second
	}
	t := &HTTP1{
		opts:   opts,
		dialer: net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second},
		limits: http1.Limits{MaxHeaderBytes: readBufferSize, MaxHeaderCount: 200},
		pools:  make(map[string]*connPool),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go t.sweep()
	return t
}

func (t *HTTP1) pool(addr string) *connPool {
	t.mu.Lock()
	p := t.pools[addr]
	if p == nil {
		p = &connPool{t: t, addr: addr}
		if t.opts.MaxConnsPerEndpoint > 0 {
			p.slots = make(chan struct{}, t.opts.MaxConnsPerEndpoint)
		}
		t.pools[addr] = p
	}
	t.mu.Unlock()
	return p
}

// Close closes every idle connection and makes connections returned later close too.
func (t *HTTP1) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	pools := t.pools
	t.mu.Unlock()
	close(t.stop)
	<-t.done
	for _, p := range pools {
		p.closeIdle(time.Time{})
	}
}

func (t *HTTP1) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *HTTP1) sweep() {
	defer close(t.done)
	iv := t.opts.IdleTimeout / 2
	if iv < time.Second {
		iv = time.Second
	}
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case now := <-tick.C:
			t.mu.Lock()
			pools := make([]*connPool, 0, len(t.pools))
			for _, p := range t.pools {
				pools = append(pools, p)
			}
			t.mu.Unlock()
			for _, p := range pools {
				p.closeIdle(now.Add(-t.opts.IdleTimeout))
			}
		}
	}
}

// connPool holds the connections to one endpoint.
type connPool struct {
	t     *HTTP1
	addr  string
	slots chan struct{} // one token per open connection when MaxConnsPerEndpoint is set

	mu   sync.Mutex
	idle []*upConn
}

// upConn is one upstream connection.
type upConn struct {
	pool     *connPool
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	reused   bool

	// Per-exchange state, reused: a connection carries one exchange at a time.
	resp    httpmsg.Response
	fixed   io.LimitedReader
	chunked *http1.ChunkedReader
}

func (p *connPool) get(deadline time.Time) (*upConn, error) {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return p.dial(deadline)
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		// A connection that sat idle a while may have been closed by the upstream's keep-alive
		// timeout: look before using it. Warm connections skip the check (and its system call).
		if time.Since(uc.lastUsed) > staleCheckAfter && !uc.alive() {
			uc.close()
			continue
		}
		uc.reused = true
		return uc, nil
	}
}

// staleCheckAfter is how long a pooled connection may sit idle before it is checked for a close
// by the upstream before reuse.
const staleCheckAfter = time.Second

// alive reports whether an idle connection is still open and quiet. It peeks at the socket
// without waiting (MSG_PEEK|MSG_DONTWAIT): end-of-stream or an error means the upstream closed
// it; unexpected bytes mean it is out of step. (A read deadline in the past cannot do this: Go
// reports the deadline before it tries the read.)
func (uc *upConn) alive() bool {
	if uc.br.Buffered() > 0 {
		return false
	}
	sc, ok := uc.c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	})
	return err == nil && ok
}

func (p *connPool) dial(deadline time.Time) (*upConn, error) {
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		default:
			var timeout <-chan time.Time
			if !deadline.IsZero() {
				tm := time.NewTimer(time.Until(deadline))
				defer tm.Stop()
				timeout = tm.C
			}
			select {
			case p.slots <- struct{}{}:
			case <-timeout:
				return nil, proxy.Fail(503, proxy.ReasonUpstreamUnavailable, errors.New("upstream: connection limit reached for "+p.addr))
			}
		}
	}
	d := p.t.dialer
	if !deadline.IsZero() {
		d.Deadline = deadline
	}
	c, err := d.Dial("tcp", p.addr)
	if err != nil {
		p.release()
		p.t.opts.Hooks.connectFailed()
		return nil, err
	}
	p.t.opts.Hooks.opened()
	return &upConn{pool: p, c: c, br: bufio.NewReaderSize(c, readBufferSize), bw: bufio.NewWriterSize(c, 8<<10)}, nil
}

func (p *connPool) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// put returns a healthy connection to the pool, or closes it when the pool is full or closed.
func (p *connPool) put(uc *upConn) {
	if p.t.isClosed() {
		uc.close()
		return
	}
	uc.lastUsed = time.Now()
	_ = uc.c.SetDeadline(time.Time{})
	p.mu.Lock()
	if len(p.idle) >= p.t.opts.MaxIdlePerEndpoint && p.t.opts.MaxIdlePerEndpoint > 0 {
		p.mu.Unlock()
		uc.close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// closeIdle closes idle connections last used before cutoff (all when cutoff is zero).
func (p *connPool) closeIdle(cutoff time.Time) {
	p.mu.Lock()
	keep := p.idle[:0]
	var drop []*upConn
	for _, uc := range p.idle {
		if cutoff.IsZero() || uc.lastUsed.Before(cutoff) {
			drop = append(drop, uc)
		} else {
			keep = append(keep, uc)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, uc := range drop {
		uc.close()
	}
}

func (uc *upConn) close() {
	_ = uc.c.Close()
	uc.pool.release()
	uc.pool.t.opts.Hooks.closed()
}

// Forward implements Transport.
func (t *HTTP1) Forward(x *proxy.Exchange, addr string) error {
	p := t.pool(addr)
	if x.Req.Upgrade != "" {
		return t.forwardUpgrade(x, p)
	}
	x.UpstreamStart = time.Now()
	uc, err := p.get(x.Deadline)
	if err != nil {
		return classify(err, true)
	}
	// On a reused connection keep a small body, so the request can be sent again if the
	// connection turns out to have been closed by the upstream.
	var replay *[]byte
	if uc.reused && x.Body != nil && x.Req.ContentLength > 0 && x.Req.ContentLength <= maxReplayBytes {
		if replay, err = readReplay(x); err != nil {
			uc.pool.put(uc)
			return err
		}
		defer replayBufs.Put(replay)
	}
	retry, err := t.exchange(x, uc)
	// A pooled connection the upstream closed while idle fails before any response byte. Such a
	// request never reached the application: send it again, once, on a new connection, when its
	// body can be replayed.
	if err != nil && retry && uc.reused && (x.Body == nil || replay != nil) {
		if replay != nil {
			x.Body = bytes.NewReader(*replay)
			x.BytesIn = 0
		}
		if uc, err = p.dial(x.Deadline); err != nil {
			return classify(err, true)
		}
		_, err = t.exchange(x, uc)
	}
	return err
}

// exchange runs one request on uc. retry reports that the failure happened before the upstream
// sent anything, on a connection that may have been closed while idle.
func (t *HTTP1) exchange(x *proxy.Exchange, uc *upConn) (retry bool, err error) {
	if !x.Deadline.IsZero() {
		_ = uc.c.SetDeadline(x.Deadline)
	}
	uc.bw.Write(appendRequest(uc.bw.AvailableBuffer(), x))
	if x.Body != nil {
		if err := writeBody(uc.bw, x); err != nil {
			uc.close()
			if de, ok := asDownstream(err); ok {
				return false, de
			}
			return true, classify(err, false)
		}
	}
	if err := uc.bw.Flush(); err != nil {
		uc.close()
		return true, classify(err, false)
	}
	resp := &uc.resp
	hdr := resp.Header[:0]
	*resp = httpmsg.Response{Header: hdr}
	for {
		n, err := readResponseHead(uc.br, t.limits, x.Req.Method, resp)
		if err != nil {
			uc.close()
			if n == 0 && isConnClosed(err) {
				return true, classify(err, false)
			}
			return false, asResponseError(err)
		}
		if resp.Status >= 100 && resp.Status < 200 {
			continue // 100 Continue and informational heads are not forwarded.
		}
		break
	}
	return false, t.relay(x, uc, resp)
}

// relay streams the response on uc downstream and returns uc to the pool when it is reusable.
func (t *HTTP1) relay(x *proxy.Exchange, uc *upConn, resp *httpmsg.Response) error {
	if x.Hold != nil && x.Hold.Hold(x, resp) {
		held := &proxy.HeldResponse{Status: resp.Status, RetryAfter: httpmsg.RetryAfter(resp.Header)}
		discardBody(x, uc, resp)
		x.UpstreamDuration = time.Since(x.UpstreamStart)
		return held
	}
	http1.StripHopByHop(&resp.Header, false)
	for _, edit := range x.ResponseEdits {
		edit(resp)
	}
	x.Status = resp.Status
	bodyLen := resp.ContentLength
	chunked := resp.Chunked
	if err := x.W.WriteHead(resp); err != nil {
		uc.close()
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	var trailer httpmsg.Header
	var err error
	switch {
	case !httpmsg.BodyAllowed(x.Req.Method, resp.Status) || bodyLen == 0:
	case chunked:
		if uc.chunked == nil {
			uc.chunked = http1.NewChunkedReader(uc.br, http1.ChunkLimits{})
		} else {
			uc.chunked.Reset(uc.br)
		}
		err = pump(x, uc.chunked, uc.br)
		trailer = uc.chunked.Trailer()
	case bodyLen > 0:
		uc.fixed = io.LimitedReader{R: uc.br, N: bodyLen}
		err = pump(x, &uc.fixed, uc.br)
		if err == nil && x.BytesOut < bodyLen {
			err = io.ErrUnexpectedEOF
		}
	default: // close-delimited
		err = pump(x, uc.br, uc.br)
		resp.Close = true
	}
	x.UpstreamDuration = time.Since(x.UpstreamStart)
	if err != nil {
		uc.close()
		return err
	}
	if ferr := x.W.Finish(trailer); ferr != nil {
		uc.close()
		return proxy.Fail(499, proxy.ReasonDownstreamReset, ferr)
	}
	if resp.Close {
		uc.close()
	} else {
		uc.pool.put(uc)
	}
	return nil
}

// maxDiscardBytes is the largest held response body read to the end to keep its connection.
const maxDiscardBytes = 64 << 10

// discardBody drops the body of a held response, keeping the connection when that is cheap.
func discardBody(x *proxy.Exchange, uc *upConn, resp *httpmsg.Response) {
	switch {
	case resp.Close || resp.Chunked:
		uc.close()
	case !httpmsg.BodyAllowed(x.Req.Method, resp.Status) || resp.ContentLength == 0:
		uc.pool.put(uc)
	case resp.ContentLength > 0 && resp.ContentLength <= maxDiscardBytes:
		if _, err := uc.br.Discard(int(resp.ContentLength)); err != nil {
			uc.close()
			return
		}
		uc.pool.put(uc)
	default:
		uc.close()
	}
}

// pump streams src downstream. With buffered set (an HTTP/1 upstream), it flushes whenever the
// upstream has nothing more buffered, so server-sent events and other streams reach the client
// promptly while bulk bodies are batched; the last bytes of a length-delimited body need no flush,
// because Finish follows at once and on HTTP/2 the final DATA frame can then carry END_STREAM.
// With buffered nil (an HTTP/2 upstream, where each read is one or more DATA frames and gRPC
// needs every message delivered as it comes), it flushes after every read.
func pump(x *proxy.Exchange, src io.Reader, buffered *bufio.Reader) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			w, werr := x.W.Write(buf[:n])
			x.BytesOut += int64(w)
			if werr == nil && (buffered == nil || (buffered.Buffered() == 0 && !complete(src))) {
				werr = x.W.Flush()
			}
			if werr != nil {
				return proxy.Fail(499, proxy.ReasonDownstreamReset, werr)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return classify(rerr, false)
		}
	}
}

// maxReplayBytes is the largest request body kept for sending again on a new connection.
const maxReplayBytes = 64 << 10

var replayBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxReplayBytes); return &b }}

// readReplay reads the whole (small, length-delimited) request body into a pooled buffer and
// makes x.Body read from it.
func readReplay(x *proxy.Exchange) (*[]byte, error) {
	bp := replayBufs.Get().(*[]byte)
	buf := (*bp)[:x.Req.ContentLength]
	if _, err := io.ReadFull(x.Body, buf); err != nil {
		replayBufs.Put(bp)
		if de, ok := asDownstream(&downstreamError{err}); ok {
			return nil, de
		}
		return nil, err
	}
	*bp = buf
	x.Body = bytes.NewReader(buf)
	return bp, nil
}

// complete reports whether src is a length-delimited body that has been read to its end.
func complete(src io.Reader) bool {
	lr, ok := src.(*io.LimitedReader)
	return ok && lr.N == 0
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// appendRequest serialises the request head for the upstream, with framing for its body.
func appendRequest(dst []byte, x *proxy.Exchange) []byte {
	dst = http1.AppendRequestHead(dst, &x.Req)
	dst = dst[:len(dst)-2] // reopen the head to add framing fields
	if x.Body != nil {
		if x.Req.ContentLength >= 0 {
			dst = append(dst, "Content-Length: "...)
			dst = strconv.AppendInt(dst, x.Req.ContentLength, 10)
			dst = append(dst, "\r\n"...)
		} else {
			dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
		}
	}
	if x.Req.Upgrade != "" {
		dst = append(dst, "Connection: Upgrade\r\nUpgrade: "...)
		dst = append(dst, x.Req.Upgrade...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// writeBody copies the request body upstream with the framing appendRequest declared.
func writeBody(bw *bufio.Writer, x *proxy.Exchange) error {
	body := &bodyReader{r: x.Body, x: x}
	if x.Req.ContentLength >= 0 {
		n, err := io.Copy(bw, io.LimitReader(body, x.Req.ContentLength))
		if err == nil && n < x.Req.ContentLength {
			err = &downstreamError{io.ErrUnexpectedEOF}
		}
		return err
	}
	cw := http1.NewChunkedWriter(bw)
	if _, err := io.Copy(cw, body); err != nil {
		return err
	}
	return cw.Close()
}

// readResponseHead reads one response head from br. n is how many bytes had arrived.
func readResponseHead(br *bufio.Reader, lim http1.Limits, method string, resp *httpmsg.Response) (int, error) {
	n, err := http1.ReadHead(br, func(buf []byte) (int, error) { return http1.ParseResponse(buf, lim, method, resp) })
	if errors.Is(err, http1.ErrHeadTooLarge) {
		return n, proxy.Fail(502, proxy.ReasonUpstreamProtocol, errors.New("upstream: response head too large"))
	}
	return n, err
}

func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET)
}

// asResponseError maps a failure to read a response head.
func asResponseError(err error) *proxy.Error {
	var pe *http1.ParseError
	if errors.As(err, &pe) {
		return proxy.Fail(502, proxy.ReasonUpstreamProtocol, err)
	}
	return classify(err, false)
}
