package sidecar

import (
	"errors"
	"net"
	"sync"
	"time"
)

// connListener is a net.Listener whose connections a front accepted and handed over: the
// engine serves one per virtual listener of the sidecar config.
type connListener struct {
	name  string
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

// errListenerClosed is returned by Accept after Close, and by hand when nobody serves.
var errListenerClosed = errors.New("sidecar: listener closed")

func newConnListener(name string, addr net.Addr) *connListener {
	return &connListener{name: name, addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept implements net.Listener.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener: the front's address.
func (l *connListener) Addr() net.Addr { return l.addr }

// hand gives c to whoever serves the listener, waiting at most wait (the engine's accept loop
// holds back at its connection limit). It reports false, without closing c, when the listener
// is closed or busy for that long.
func (l *connListener) hand(c net.Conn, wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	case <-t.C:
		return false
	}
}
