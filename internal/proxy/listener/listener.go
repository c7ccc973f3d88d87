package listener

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
)

// Protocols a listener speaks.
const (
	ProtoHTTP  = "http"  // HTTP/1.1; an HTTP/2 prior-knowledge preface switches the connection to h2c.
	ProtoHTTPS = "https" // TLS; ALPN chooses h2 or http/1.1.
	ProtoH2C   = "h2c"   // cleartext HTTP/2 only.
)

// Listener serves one bound socket.
type Listener struct {
	name     string
	protocol string
	ln       net.Listener
	handler  atomic.Value // Handler
	log      *slog.Logger
	settings atomic.Pointer[Settings]

	// OnConn, when set, is called with +1 when a connection opens and -1 when it closes.
	onConn func(delta int)
	onShed func()

	active  atomic.Int64
	mu      sync.Mutex
	conns   map[*connState]struct{} // every open connection
	h2conns map[*h2Conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

// Options configure a Listener.
type Options struct {
	// Name is the listener's config name, carried on every exchange.
	Name string
	// Protocol is ProtoHTTP, ProtoHTTPS or ProtoH2C.
	Protocol string
	// Handler serves the exchanges.
	Handler Handler
	// Logger receives connection-level events.
	Logger *slog.Logger
	// OnConn, when set, observes the number of open connections (+1 on open, -1 on close).
	OnConn func(delta int)
	// OnShed, when set, is called for every connection closed unserved at MaxConnections.
	OnShed func()
}

// New returns a Listener on ln; Serve starts it.
func New(ln net.Listener, s *Settings, opts Options) *Listener {
	l := &Listener{
		name:     opts.Name,
		protocol: opts.Protocol,
		ln:       ln,
		log:      opts.Logger,
		onConn:   opts.OnConn,
		onShed:   opts.OnShed,
		conns:    make(map[*connState]struct{}),
		h2conns:  make(map[*h2Conn]struct{}),
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.settings.Store(s)
	l.handler.Store(handlerBox{opts.Handler})
	return l
}

// Name returns the listener's name.
func (l *Listener) Name() string { return l.name }

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// handlerBox lets handlers of different types share the atomic.Value.
type handlerBox struct{ Handler }

// h returns the handler requests are served with now.
func (l *Listener) h() Handler { return l.handler.Load().(handlerBox).Handler }

// SetHandler replaces the handler for requests that start from now on (a retired listener's
// last requests are served by the table it was bound with).
func (l *Listener) SetHandler(h Handler) { l.handler.Store(handlerBox{h}) }

// Update installs new settings; new connections and new requests use them.
func (l *Listener) Update(s *Settings) { l.settings.Store(s) }

// Serve accepts connections until Shutdown. It returns nil after Shutdown. Beyond the
// settings' MaxConnections, new connections are closed at once (reset) rather than left queued in
// the kernel: a client learns at once to go elsewhere, and a flood cannot fill the accept queue
// for everyone (Envoy's connection overflow does the same).
func (l *Listener) Serve() error {
	var backoff time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if l.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed, backing off", "listener", l.name, "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if max := l.settings.Load().MaxConnections; max > 0 && l.active.Load() >= int64(max) {
			shed(c)
			if l.onShed != nil {
				l.onShed()
			}
			continue
		}
		l.active.Add(1)
		if l.onConn != nil {
			l.onConn(1)
		}
		l.wg.Add(1)
		go l.serveConn(c)
	}
}

// shed closes a connection the listener has no room for, with a reset.
func shed(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func (l *Listener) connDone() {
	l.active.Add(-1)
	if l.onConn != nil {
		l.onConn(-1)
	}
	l.wg.Done()
}

func (l *Listener) serveConn(c net.Conn) {
	defer l.connDone()
	state := &connState{c: c}
	l.track(state, true)
	defer l.track(state, false)
	// Go's accepted TCP connections already have TCP_NODELAY; idle and request timeouts, not TCP
	// keep-alive probes, find dead clients (the listener is bound without them).
	s := l.settings.Load()
	peer := addrPort(c.RemoteAddr())
	switch l.protocol {
	case ProtoHTTPS:
		tc := tls.Server(c, s.TLS)
		_ = c.SetDeadline(time.Now().Add(s.ReadHeaderTimeout))
		if err := tc.Handshake(); err != nil {
			l.log.Debug("tls handshake failed", "listener", l.name, "peer", peer, "error", err)
			_ = c.Close()
			return
		}
		_ = c.SetDeadline(time.Time{})
		switch tc.ConnectionState().NegotiatedProtocol {
		case "h2":
			l.serveH2(tc)
			return
		case "acme-tls/1":
			// An ACME CA validating a TLS-ALPN-01 challenge: the handshake was the answer.
			_ = tc.Close()
			return
		}
		l.serveH1(tc, bufio.NewReaderSize(tc, 4<<10), state)
	case ProtoH2C:
		l.serveH2(c)
	default:
		if mc, ok := c.(*MeshConn); ok {
			// Handed over after the mesh handshake: ALPN chose the protocol.
			if mc.ConnectionState().NegotiatedProtocol == "h2" {
				l.serveH2(mc)
				return
			}
			l.serveH1(mc, bufio.NewReaderSize(mc, 4<<10), state)
			return
		}
		br := bufio.NewReaderSize(c, 4<<10)
		_ = c.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
		if isH2Preface(br) {
			_ = c.SetReadDeadline(time.Time{})
			l.serveH2(&bufferedConn{Conn: c, r: br})
			return
		}
		l.serveH1(c, br, state)
	}
}

// CloseSocket stops accepting and closes the bound socket; open connections carry on.
func (l *Listener) CloseSocket() {
	l.closing.Store(true)
	_ = l.ln.Close()
}

// Shutdown stops accepting, closes idle connections, lets active exchanges finish (HTTP/2 clients
// get GOAWAY), and returns when every connection is closed or ctx ends (then it closes the rest).
func (l *Listener) Shutdown(ctx context.Context) error {
	l.CloseSocket()
	l.shutdownH2() // GOAWAY: HTTP/2 connections close once their streams are done
	l.closeIdle()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-tick.C:
			l.closeIdle()
		case <-ctx.Done():
			l.closeAll()
			<-done
			return ctx.Err()
		}
	}
}

// connState is what the listener knows of one open connection.
type connState struct {
	c net.Conn
	// idle is set while an HTTP/1 connection waits for its next request: a shutdown closes it.
	idle atomic.Bool
}

// track records st as open or, with open false, forgets it.
func (l *Listener) track(st *connState, open bool) {
	l.mu.Lock()
	if open {
		l.conns[st] = struct{}{}
	} else {
		delete(l.conns, st)
	}
	l.mu.Unlock()
}

// setIdle marks an open connection idle or busy. It reports false when the listener is closing and
// the connection should close instead of waiting for another request.
func (l *Listener) setIdle(st *connState, idle bool) bool {
	st.idle.Store(idle)
	return !l.closing.Load()
}

func (l *Listener) closeIdle() {
	l.mu.Lock()
	for st := range l.conns {
		if st.idle.Load() {
			_ = st.c.Close()
		}
	}
	l.mu.Unlock()
}

func (l *Listener) closeAll() {
	l.mu.Lock()
	for st := range l.conns {
		_ = st.c.Close()
	}
	l.mu.Unlock()
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// isH2Preface reports whether the connection starts with the HTTP/2 client preface. It decides as
// soon as the bytes that arrived differ from the preface, so a short HTTP/1 request is never kept
// waiting for 24 bytes.
func isH2Preface(br *bufio.Reader) bool {
	const preface = http2.ClientPreface
	want := 1
	for {
		b, err := br.Peek(want)
		if len(b) > len(preface) {
			b = b[:len(preface)]
		}
		if string(b) != preface[:len(b)] {
			return false
		}
		if len(b) == len(preface) {
			return true
		}
		if err != nil {
			return false // the HTTP/1 reader reports the error
		}
		if n := br.Buffered(); n > len(b) {
			want = min(n, len(preface)) // compare what already arrived before waiting
		} else {
			want = len(b) + 1
		}
	}
}

// bufferedConn replays bytes already read into r before reading the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
