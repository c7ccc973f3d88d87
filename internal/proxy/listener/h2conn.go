package listener

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshgate/meshgate/internal/proxy/http1"
)

// HTTP/2 windows and buffers. The receive windows bound what one connection can make the proxy
// buffer: a stream's unread request body, and all of them together.
const (
	h2StreamWindow   = 1 << 20 // advertised SETTINGS_INITIAL_WINDOW_SIZE
	h2ConnWindow     = 1 << 20 // the connection's receive window, raised from 65535 at once
	h2WriteBuffer    = 32 << 10
	h2ReadBuffer     = 16 << 10
	h2MaxTableSize   = 4096  // the most of the client's HEADER_TABLE_SIZE our encoder uses
	h2DefaultWindow  = 65535 // RFC 9113 §6.9.2
	h2MaxWindow      = 1<<31 - 1
	h2DefaultFrame   = 16384 // SETTINGS_MAX_FRAME_SIZE until the client says otherwise
	h2WriteTimeout   = 30 * time.Second
	h2GoAwayDrain    = time.Second // how long a closing connection reads what the client still sends
	h2DefaultStreams = 250         // the stream limit when the settings give none
)

var (
	errH2ConnClosed  = errors.New("listener: http2 connection closed")
	errH2StreamReset = errors.New("listener: http2 stream reset")
)

// h2Conn is one downstream HTTP/2 connection: meshgate's own frame loop (x/net's Framer and HPACK
// codec underneath). One goroutine reads and dispatches frames; each stream's exchange runs on a
// goroutine of its own and writes its frames itself, under the connection's lock, into one shared
// buffer. Writers group-commit: the last writer out flushes, so responses that are ready together
// leave in one write (one TLS record) instead of one per stream.
type h2Conn struct {
	peerInfo
	l         *Listener
	c         net.Conn
	s         *Settings
	br        *bufio.Reader
	fr        *http2.Framer
	ctx       context.Context
	cancel    context.CancelFunc
	maxFields int
	// maxStreams is the most streams whose exchanges run at once (the advertised limit).
	maxStreams int
	handlers   sync.WaitGroup // the connection's workers
	// work hands a new stream to an idle worker; closed when the connection ends.
	work        chan *h2Stream
	idleWorkers atomic.Int32

	mu          sync.Mutex // guards everything below, and all writing
	bw          *bufio.Writer
	henc        *hpack.Encoder
	hbuf        []byte // the header block being encoded
	streams     map[uint32]*h2Stream
	maxStreamID uint32 // the highest stream id the client opened
	// running counts streams whose exchange runs (reset ones too, until done): every stream in
	// streams is one of them, so no stream is left when it is 0.
	running       int
	sendWindow    int64 // the connection's send window
	peerWindow    int32 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerFrameSize uint32
	unackedRecv   int32 // connection receive credit consumed and not yet returned
	recvBuffered  int64 // request body bytes received and not yet read by their exchanges
	flushPending  bool  // a writer is about to flush the buffer
	winWait       chan struct{}
	refused       int // streams refused in a row at the stream limit
	idleSince     time.Time
	goAway        bool // GOAWAY sent: no new streams, close when the last one ends
	closed        bool
	writeErr      error
	writeDeadline time.Time
	idle          *time.Timer
}

// serveH2 serves one HTTP/2 connection; c has not yet sent (or been read past) its preface.
func (l *Listener) serveH2(c net.Conn) {
	s := l.settings.Load()
	hc := &h2Conn{
		l: l, c: c, s: s,
		br:            bufio.NewReaderSize(c, h2ReadBuffer),
		bw:            bufio.NewWriterSize(c, h2WriteBuffer),
		streams:       make(map[uint32]*h2Stream),
		work:          make(chan *h2Stream),
		sendWindow:    h2DefaultWindow,
		peerWindow:    h2DefaultWindow,
		peerFrameSize: h2DefaultFrame,
		peerInfo:      newPeerInfo(c),
		maxFields:     s.Limits.MaxHeaderCount,
	}
	if hc.maxFields <= 0 {
		hc.maxFields = http1.DefaultMaxHeaderCount
	}
	hc.maxStreams = int(s.MaxConcurrentStreams)
	if hc.maxStreams <= 0 {
		hc.maxStreams = h2DefaultStreams
	}
	hc.ctx, hc.cancel = context.WithCancel(context.Background())
	hc.henc = hpack.NewEncoder(hbufWriter{hc})
	hc.henc.SetMaxDynamicTableSizeLimit(h2MaxTableSize)
	hc.fr = http2.NewFramer(hc.bw, hc.br)
	hc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	limit := s.Limits.MaxHeaderBytes
	if limit <= 0 {
		limit = http1.DefaultMaxHeaderBytes
	}
	hc.fr.MaxHeaderListSize = uint32(limit)
	hc.fr.SetMaxReadFrameSize(h2DefaultFrame)
	l.addH2(hc)
	defer l.removeH2(hc)
	hc.serve()
}

// unwrapConn returns the connection under a bufferedConn.
func unwrapConn(c net.Conn) net.Conn {
	if bc, ok := c.(*bufferedConn); ok {
		return bc.Conn
	}
	return c
}

// hbufWriter lets the HPACK encoder append to the connection's header block buffer.
type hbufWriter struct{ c *h2Conn }

func (w hbufWriter) Write(p []byte) (int, error) {
	w.c.hbuf = append(w.c.hbuf, p...)
	return len(p), nil
}

// serve runs the connection: preface, settings, then the frame loop until the connection ends.
func (c *h2Conn) serve() {
	defer c.finish()
	_ = c.c.SetReadDeadline(time.Now().Add(c.s.ReadHeaderTimeout))
	if !c.readPreface() {
		return
	}
	_ = c.c.SetReadDeadline(time.Time{})
	c.mu.Lock()
	_ = c.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.maxStreams)},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.fr.MaxHeaderListSize},
	)
	_ = c.fr.WriteWindowUpdate(0, h2ConnWindow-h2DefaultWindow)
	c.flushLocked()
	c.idleSince = time.Now()
	c.idle = time.AfterFunc(c.idleTimeout(), c.idleExpired)
	if c.l.closing.Load() {
		c.goAwayLocked(http2.ErrCodeNo) // the listener began shutting down as this connection came
	}
	c.mu.Unlock()
	for {
		if !c.frameBuffered() {
			// About to wait for the client: what the reader wrote (acknowledgements, window
			// updates, resets) leaves now unless a writer is about to flush it anyway.
			c.mu.Lock()
			if !c.flushPending {
				c.flushLocked()
			}
			c.mu.Unlock()
		}
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.readFailed(err) {
				return
			}
			continue
		}
		if err := c.dispatch(f); err != nil {
			if !c.readFailed(err) {
				return
			}
		}
		if c.stopping() {
			c.drainClose() // the client may still be sending: close without a reset
			return
		}
	}
}

// frameBuffered reports whether a whole frame is already buffered, so reading it cannot wait.
func (c *h2Conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < 9 {
		return false
	}
	h, _ := c.br.Peek(3)
	return n >= 9+(int(h[0])<<16|int(h[1])<<8|int(h[2]))
}

// readPreface reads the client preface. A connection that does not start with it is closed.
func (c *h2Conn) readPreface() bool {
	var buf [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.br, buf[:]); err != nil {
		return false
	}
	if string(buf[:]) != http2.ClientPreface {
		c.l.log.Debug("http2: invalid client preface", "listener", c.l.name, "peer", c.peer)
		c.drainClose()
		return false
	}
	return true
}

// readFailed handles an error from reading or dispatching a frame; it reports whether the
// connection goes on.
func (c *h2Conn) readFailed(err error) bool {
	var se http2.StreamError
	var ce http2.ConnectionError
	switch {
	case errors.As(err, &se):
		c.mu.Lock()
		c.resetLocked(se.StreamID, se.Code)
		c.mu.Unlock()
		return true
	case errors.As(err, &ce):
		c.fail(http2.ErrCode(ce), err)
	case errors.Is(err, http2.ErrFrameTooLarge):
		c.fail(http2.ErrCodeFrameSize, err)
	default:
		// The client went away or the connection broke: nothing more can be said to it.
		if !isQuietEnd(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
			c.l.log.Debug("http2: read failed", "listener", c.l.name, "peer", c.peer, "error", err)
		}
	}
	return false
}

// fail ends the connection with a GOAWAY carrying code.
func (c *h2Conn) fail(code http2.ErrCode, err error) {
	c.l.log.Debug("http2: connection error", "listener", c.l.name, "peer", c.peer, "code", code, "error", err, "detail", c.fr.ErrorDetail())
	c.mu.Lock()
	if !c.closed {
		_ = c.fr.WriteGoAway(c.maxStreamID, code, nil)
		c.flushLocked()
	}
	c.goAway = true
	c.mu.Unlock()
	c.drainClose()
}

// drainClose closes the connection after a last look at what the client still sends: closed at
// once with unread bytes pending, a TCP connection would be reset and the client might lose the
// GOAWAY that says why.
func (c *h2Conn) drainClose() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := unwrapConn(c.c).(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_ = c.c.SetReadDeadline(time.Now().Add(h2GoAwayDrain))
	_, _ = io.CopyN(io.Discard, c.c, 1<<20)
	_ = c.c.Close()
}

// stopping reports whether the frame loop should end: a GOAWAY was sent and no stream is left.
func (c *h2Conn) stopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.goAway && c.running == 0
}

// finish tears the connection down: streams are cancelled, writers woken, and the function
// returns once every stream's exchange has ended.
func (c *h2Conn) finish() {
	c.mu.Lock()
	if !c.closed && c.goAway && c.running == 0 {
		c.flushLocked()
	}
	c.closed = true
	if c.writeErr == nil {
		c.writeErr = errH2ConnClosed
	}
	for _, st := range c.streams {
		st.abortLocked(errH2ConnClosed)
	}
	c.wakeWritersLocked()
	if c.idle != nil {
		c.idle.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	_ = c.c.Close()
	close(c.work) // no stream starts any more: idle workers end
	c.handlers.Wait()
}

// idleTimeout is how long the connection may stay without a stream.
func (c *h2Conn) idleTimeout() time.Duration {
	if c.s.IdleTimeout > 0 {
		return c.s.IdleTimeout
	}
	return 2 * time.Minute
}

// idleExpired ends a connection that had no stream for the idle timeout. The timer is not touched
// as streams come and go: it fires once per timeout and looks at when the connection became idle.
func (c *h2Conn) idleExpired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	timeout := c.idleTimeout()
	if c.running > 0 {
		c.idle.Reset(timeout)
		return
	}
	if left := timeout - time.Since(c.idleSince); left > 0 {
		c.idle.Reset(left)
		return
	}
	c.goAwayLocked(http2.ErrCodeNo)
	_ = c.c.Close()
}

// goAwayLocked tells the client that no stream above the last one it opened will be served.
func (c *h2Conn) goAwayLocked(code http2.ErrCode) {
	if c.goAway || c.closed {
		return
	}
	c.goAway = true
	_ = c.fr.WriteGoAway(c.maxStreamID, code, nil)
	c.flushLocked()
}

// shutdown starts a graceful close: GOAWAY now, the connection closes when its streams are done.
// A connection still reading its preface sends GOAWAY after its SETTINGS.
func (c *h2Conn) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		return
	}
	c.goAwayLocked(http2.ErrCodeNo)
	if c.running == 0 {
		c.closeGracefullyLocked()
	}
}

// flushLocked writes the buffered frames, bounding the write by the connection's write timeout.
// c.mu is held.
func (c *h2Conn) flushLocked() {
	if c.writeErr != nil || c.bw.Buffered() == 0 {
		return
	}
	now := time.Now()
	if c.writeDeadline.Sub(now) < h2WriteTimeout/2 {
		// Re-armed only when half used: one deadline change per many flushes.
		c.writeDeadline = now.Add(h2WriteTimeout)
		_ = c.c.SetWriteDeadline(c.writeDeadline)
	}
	c.flushPending = false
	if err := c.bw.Flush(); err != nil {
		c.writeErr = err
		c.wakeWritersLocked()
		_ = c.c.Close() // the reader ends, and with it the connection
	}
}

// lockWrite takes the connection's lock for writing; unlockWrite releases it and sees that what
// was written is flushed soon.
func (c *h2Conn) lockWrite() { c.mu.Lock() }

// unlockWrite releases the lock. The first writer that leaves frames in the buffer yields once
// before it flushes: the other exchanges that are ready to run (on this core or any) write their
// frames meanwhile, and they all leave in one write, one TLS record, as an event loop like
// nginx's batches the responses of one turn. Writers that find a flush pending just leave.
func (c *h2Conn) unlockWrite() {
	if c.flushPending || c.bw.Buffered() == 0 || c.writeErr != nil {
		c.mu.Unlock()
		return
	}
	c.flushPending = true
	c.mu.Unlock()
	runtime.Gosched()
	c.mu.Lock()
	if c.flushPending {
		c.flushLocked()
	}
	c.mu.Unlock()
}

// windowWaitLocked returns a channel closed at the next change that may let a blocked writer go
// on: a window update, a reset, the connection's end.
func (c *h2Conn) windowWaitLocked() <-chan struct{} {
	if c.winWait == nil {
		c.winWait = make(chan struct{})
	}
	return c.winWait
}

// wakeWritersLocked wakes every writer waiting for a window.
func (c *h2Conn) wakeWritersLocked() {
	if c.winWait != nil {
		close(c.winWait)
		c.winWait = nil
	}
}

// addH2 and removeH2 track the listener's HTTP/2 connections for a graceful shutdown.
func (l *Listener) addH2(c *h2Conn) {
	l.mu.Lock()
	l.h2conns[c] = struct{}{}
	l.mu.Unlock()
}

func (l *Listener) removeH2(c *h2Conn) {
	l.mu.Lock()
	delete(l.h2conns, c)
	l.mu.Unlock()
}

// shutdownH2 sends GOAWAY on every HTTP/2 connection.
func (l *Listener) shutdownH2() {
	l.mu.Lock()
	conns := make([]*h2Conn, 0, len(l.h2conns))
	for c := range l.h2conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}
