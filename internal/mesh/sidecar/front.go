package sidecar

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
)

// maxPendingConns bounds the connections a front works on before the engine takes them
// (handshakes, original-destination look-ups).
const maxPendingConns = 4096

// serveFront accepts connections on ln and serves each with serve in its own goroutine, at most
// maxPendingConns at once, until ln is closed.
func serveFront(ln net.Listener, log *slog.Logger, serve func(net.Conn), wg *sync.WaitGroup) {
	slots := make(chan struct{}, maxPendingConns)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				log.Warn("sidecar: accept failed, backing off", "address", ln.Addr().String(), "error", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			log.Error("sidecar: accept failed", "address", ln.Addr().String(), "error", err)
			return
		}
		backoff = 0
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			serve(c)
		}()
	}
}

// handTo gives c to the engine's virtual listener name.
func (s *Sidecar) handTo(name string, c net.Conn, direction string) {
	for range 2 { // the listener may be replaced by a reload meanwhile: look again once
		if l := s.virtual(name); l != nil && l.hand(c, handWait) {
			return
		}
	}
	s.refuse(c, direction, proxy.ReasonOverloaded, "no listener "+name+" took the connection")
}

// refuse closes c at once (a reset), counting why.
func (s *Sidecar) refuse(c net.Conn, direction, reason, detail string) {
	s.m.refused.WithLabelValues(direction, reason).Inc()
	s.log.Info("connection refused", "direction", direction, "reason", reason, "peer", c.RemoteAddr().String(), "detail", detail)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// closeSoon half-closes c and closes it after the peer has had a moment to read what was
// written (closing at once could reset the connection before the answer is read).
func closeSoon(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		buf := make([]byte, 512)
		for range 64 {
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
	}
	_ = c.Close()
}
