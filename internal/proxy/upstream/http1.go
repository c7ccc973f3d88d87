package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
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
	// Limiter, when set, bounds the connections open across every endpoint of the transport and
	// the requests waiting for one: a service's circuit breaker. Optional.
	Limiter ConnLimiter
	// Dial, when set, opens connections instead of a plain TCP dial (mutual TLS to mesh peers).
	Dial DialFunc
}

// DialFunc opens a connection to an endpoint address; the context carries the connect deadline.
// The connection it returns must be ready for the protocol (a TLS handshake, if any, done).
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// ConnLimiter bounds the connections of a whole service and the requests waiting for one, the way
// a circuit breaker's connection thresholds do. Its methods are called concurrently and must not
// block.
type ConnLimiter interface {
	// AcquireConn reserves a connection before it is dialled; it reports false when the service
	// has its maximum open. Every reservation is given back with ReleaseConn.
	AcquireConn() bool
	// ReleaseConn gives back a reservation when its connection is closed or its dial failed.
	ReleaseConn()
	// BeginPending records a request that starts waiting for a connection. A non-nil error (a
	// *proxy.Error) refuses the wait: too many requests wait already, and the request fails with it.
	BeginPending() error
	// EndPending records that a request admitted by BeginPending stopped waiting.
	EndPending()
	// ConnOverflow returns the error (a *proxy.Error) for a request that waited until its deadline
	// because the service had its maximum of connections open.
	ConnOverflow() error
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

	// limitWaiters counts requests waiting because the Limiter refused a connection, over all
	// pools; a closed connection wakes one of them.
	limitWaiters atomic.Int64
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
		p = &connPool{t: t, addr: addr, max: t.opts.MaxConnsPerEndpoint}
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

// connPool holds the connections to one endpoint. A request takes the warmest idle connection, or
// dials a new one when the endpoint's and the service's connection limits allow; otherwise it
// waits in line for a connection another request returns, or for the place of one that closes.
type connPool struct {
	t    *HTTP1
	addr string
	max  int // MaxConnsPerEndpoint; 0: no limit

	mu      sync.Mutex
	idle    []*upConn
	open    int           // connections open or being dialled
	waiters []*connWaiter // requests waiting for a connection, oldest first
}

// connWaiter is a request waiting for a connection of a pool.
type connWaiter struct {
	// ch receives an idle connection handed over by put, or nil when the place of a connection
	// freed up and the request should try again. It holds one value, so senders never block.
	ch chan *upConn
	// fresh: the request needs a new connection (an upgrade, or a resend after a stale
	// connection), so it is never handed an idle one.
	fresh bool
	// limited: the request waits because the service's Limiter refused it a connection.
	limited bool
}

// upConn is one upstream connection.
type upConn struct {
	pool     *connPool
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	reused   bool
	dl       proxy.Deadlines

	// Per-exchange state, reused: a connection carries one exchange at a time.
	resp    httpmsg.Response
	fixed   io.LimitedReader
	chunked *http1.ChunkedReader
}

// get returns an idle connection, or else a new one (see acquire).
func (p *connPool) get(deadline time.Time) (*upConn, error) { return p.acquire(deadline, true) }

// dial returns a new connection (see acquire).
func (p *connPool) dial(deadline time.Time) (*upConn, error) { return p.acquire(deadline, false) }

// acquire returns a connection to the endpoint: with reuse, the most recently used idle one when
// there is one. Otherwise it dials a new one when MaxConnsPerEndpoint and the service's Limiter
// allow, or else waits until another request returns a connection (only with reuse) or a
// connection closes, at most until deadline (a zero deadline waits as long as it takes). A
// request that has to wait is first admitted by the Limiter's pending-request threshold.
func (p *connPool) acquire(deadline time.Time, reuse bool) (*upConn, error) {
	lim := p.t.opts.Limiter
	var w *connWaiter
	var timeout <-chan time.Time
	for {
		p.mu.Lock()
		if reuse && len(p.idle) > 0 {
			n := len(p.idle)
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
			p.endWait(w)
			return uc, nil
		}
		limited := false
		if p.max <= 0 || p.open < p.max {
			if lim == nil || lim.AcquireConn() {
				p.open++
				p.mu.Unlock()
				p.endWait(w)
				return p.connect(deadline)
			}
			limited = true
		}
		if w == nil {
			if lim != nil {
				if err := lim.BeginPending(); err != nil {
					p.mu.Unlock()
					return nil, err
				}
			}
			w = &connWaiter{ch: make(chan *upConn, 1), fresh: !reuse}
		}
		w.limited = limited
		p.waiters = append(p.waiters, w)
		if limited {
			p.t.limitWaiters.Add(1)
			// A connection of another pool may have closed between the refusal and the count
			// just above, and seen no one to wake: ask again now that this waiter is counted.
			if lim.AcquireConn() {
				p.removeWaiter(w)
				p.open++
				p.mu.Unlock()
				p.endWait(w)
				return p.connect(deadline)
			}
		}
		p.mu.Unlock()
		if limited {
			// Idle connections to other endpoints may hold the service's connections: close
			// one, so that its place goes to a waiting request.
			p.t.closeOneIdle(p)
		}
		if timeout == nil && !deadline.IsZero() {
			tm := time.NewTimer(time.Until(deadline))
			defer tm.Stop()
			timeout = tm.C
		}
		select {
		case uc := <-w.ch:
			if uc != nil {
				uc.reused = true
				p.endWait(w)
				return uc, nil
			}
			// The place of a connection freed up: try again.
		case <-timeout:
			p.mu.Lock()
			removed := p.removeWaiter(w)
			p.mu.Unlock()
			if !removed {
				// Woken at the same moment: take what came, or pass the wake-up on.
				if uc := <-w.ch; uc != nil {
					uc.reused = true
					p.endWait(w)
					return uc, nil
				}
				p.wakeOne()
			}
			p.endWait(w)
			if w.limited {
				return nil, lim.ConnOverflow()
			}
			return nil, proxy.Fail(503, proxy.ReasonUpstreamUnavailable, errors.New("upstream: connection limit reached for "+p.addr))
		}
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
	peek := func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK)
		return true // never wait for readiness
	}
	err = rc.Read(peek)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The last exchange's deadline passed while the connection was idle.
		uc.dl.Set(uc.c, time.Time{})
		err = rc.Read(peek)
	}
	return err == nil && ok
}

// endWait ends the wait of w, when the request waited.
func (p *connPool) endWait(w *connWaiter) {
	if w != nil && p.t.opts.Limiter != nil {
		p.t.opts.Limiter.EndPending()
	}
}

// removeWaiter takes w out of the line and reports whether it was in it. p.mu is held.
func (p *connPool) removeWaiter(w *connWaiter) bool {
	for i, x := range p.waiters {
		if x == w {
			copy(p.waiters[i:], p.waiters[i+1:])
			p.waiters[len(p.waiters)-1] = nil
			p.waiters = p.waiters[:len(p.waiters)-1]
			if w.limited {
				p.t.limitWaiters.Add(-1)
			}
			return true
		}
	}
	return false
}

// popWaiter takes the first waiter out of the line and returns it, or nil. With idle set it
// skips the waiters that need a fresh connection. p.mu is held.
func (p *connPool) popWaiter(idle bool) *connWaiter {
	for _, w := range p.waiters {
		if idle && w.fresh {
			continue
		}
		p.removeWaiter(w)
		return w
	}
	return nil
}

// wakeOne tells the first waiter of the pool, or else a request that any pool's Limiter made
// wait, that the place of a connection freed up.
func (p *connPool) wakeOne() {
	p.mu.Lock()
	w := p.popWaiter(false)
	p.mu.Unlock()
	if w != nil {
		w.ch <- nil
		return
	}
	p.t.wakeLimited()
}

// wakeLimited wakes one request that waits because the Limiter refused it a connection.
func (t *HTTP1) wakeLimited() {
	if t.limitWaiters.Load() == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.pools {
		p.mu.Lock()
		var w *connWaiter
		for _, x := range p.waiters {
			if x.limited {
				w = x
				break
			}
		}
		if w != nil {
			p.removeWaiter(w)
		}
		p.mu.Unlock()
		if w != nil {
			w.ch <- nil
			return
		}
	}
}

// closeOneIdle closes the least recently used idle connection of a pool other than except, so
// that its place under the service's connection limit goes to a waiting request.
func (t *HTTP1) closeOneIdle(except *connPool) {
	var victim *upConn
	t.mu.Lock()
	for _, p := range t.pools {
		if p == except {
			continue
		}
		p.mu.Lock()
		if n := len(p.idle); n > 0 {
			victim = p.idle[0]
			copy(p.idle, p.idle[1:])
			p.idle[n-1] = nil
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if victim != nil {
			break
		}
	}
	t.mu.Unlock()
	if victim != nil {
		victim.close()
	}
}

// connect dials a connection whose place acquire has reserved.
func (p *connPool) connect(deadline time.Time) (*upConn, error) {
	c, err := p.t.dial(deadline, p.addr)
	if err != nil {
		p.release()
		p.t.opts.Hooks.connectFailed()
		return nil, err
	}
	p.t.opts.Hooks.opened()
	return &upConn{pool: p, c: c, br: bufio.NewReaderSize(c, readBufferSize), bw: bufio.NewWriterSize(c, 8<<10)}, nil
}

// dial opens a connection to addr with the transport's Dial, or plain TCP, within deadline and
// the connect timeout.
func (t *HTTP1) dial(deadline time.Time, addr string) (net.Conn, error) {
	if t.opts.Dial == nil {
		d := t.dialer
		if !deadline.IsZero() {
			d.Deadline = deadline
		}
		return d.Dial("tcp", addr)
	}
	ctx := context.Background()
	if t.opts.ConnectTimeout > 0 {
		if d := time.Now().Add(t.opts.ConnectTimeout); deadline.IsZero() || d.Before(deadline) {
			deadline = d
		}
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	return t.opts.Dial(ctx, addr)
}

// release gives back the place of a connection that closed or could not be dialled, and wakes a
// request waiting for one.
func (p *connPool) release() {
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
	if lim := p.t.opts.Limiter; lim != nil {
		lim.ReleaseConn()
	}
	p.wakeOne()
}

// put returns a healthy connection to the pool, or closes it when the pool is full or closed.
func (p *connPool) put(uc *upConn) {
	if p.t.isClosed() {
		uc.close()
		return
	}
	uc.lastUsed = time.Now()
	// The deadline stays: the next exchange sets its own (and alive clears one that passed).
	p.mu.Lock()
	if w := p.popWaiter(true); w != nil {
		p.mu.Unlock()
		w.ch <- uc
		return
	}
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
	return idleTimeout(x, t.forward(x, addr))
}

// forward is Forward without the stream idle timeout's reason.
func (t *HTTP1) forward(x *proxy.Exchange, addr string) error {
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
	// A body that can rewind (one a retry policy already buffered) needs no copy of its own.
	rewind, _ := x.Body.(io.Seeker)
	if rewind == nil && uc.reused && x.Body != nil && x.Req.ContentLength > 0 && x.Req.ContentLength <= maxReplayBytes {
		replay, err := readReplay(x)
		if err != nil {
			uc.pool.put(uc)
			return err
		}
		defer replayBufs.Put(replay)
		rewind = x.Body.(io.Seeker)
	}
	retry, err := t.exchange(x, uc)
	// A pooled connection the upstream closed while idle fails before any response byte. Such a
	// request never reached the application: send it again, once, on a new connection, when its
	// body can be replayed.
	if err != nil && retry && uc.reused && (x.Body == nil || rewind != nil) {
		if rewind != nil {
			if _, serr := rewind.Seek(0, io.SeekStart); serr != nil {
				return err
			}
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
	armDeadline(uc, x)
	uc.bw.Write(appendRequest(uc.bw.AvailableBuffer(), x))
	if x.Body != nil {
		var progress func()
		if x.StreamIdle > 0 {
			progress = func() { armDeadline(uc, x) }
		}
		if err := writeBody(uc.bw, x, progress); err != nil {
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
	if x.StreamIdle > 0 && x.Body != nil {
		armDeadline(uc, x) // the response head is awaited for one idle period after the body
	}
	resp := &uc.resp
	hdr := resp.Header[:0]
	*resp = httpmsg.Response{Header: hdr}
	runtime.Gosched()
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
	proxy.EchoRequestID(x, resp)
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
		err = pump(x, uc.chunked, uc.br, uc)
		trailer = uc.chunked.Trailer()
	case bodyLen > 0:
		uc.fixed = io.LimitedReader{R: uc.br, N: bodyLen}
		err = pump(x, &uc.fixed, uc.br, uc)
		if err == nil && x.BytesOut < bodyLen {
			err = io.ErrUnexpectedEOF
		}
	default: // close-delimited
		err = pump(x, uc.br, uc.br, uc)
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
// needs every message delivered as it comes), it flushes after every read. With conn set and a
// stream idle timeout, each read may wait one idle period on conn.
func pump(x *proxy.Exchange, src io.Reader, buffered *bufio.Reader, conn *upConn) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	idle := conn != nil && x.StreamIdle > 0
	for {
		if idle && (buffered == nil || buffered.Buffered() == 0) {
			armDeadline(conn, x)
		}
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

// writeBody copies the request body upstream with the framing appendRequest declared, calling
// progress (when set) whenever body bytes arrive.
func writeBody(bw *bufio.Writer, x *proxy.Exchange, progress func()) error {
	body := &bodyReader{r: x.Body, x: x, progress: progress}
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
