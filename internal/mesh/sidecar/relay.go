package sidecar

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// relay copies bytes both ways between a and b until both directions end, passing half-closes
// on, and closes both. A direction idle for idle ends the relay.
func relay(a, b net.Conn, idle time.Duration) (aToB, bToA int64) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		aToB = copyHalf(b, a, idle)
	}()
	go func() {
		defer wg.Done()
		bToA = copyHalf(a, b, idle)
	}()
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	return aToB, bToA
}

// copyHalf copies src to dst, then half-closes dst (or closes both when that is not possible
// or the copy failed).
func copyHalf(dst, src net.Conn, idle time.Duration) int64 {
	buf := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(buf)
	n, err := io.CopyBuffer(dst, &idleReader{c: src, idle: idle}, *buf)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		_ = src.Close()
		_ = dst.Close()
		return n
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return n
		}
	}
	_ = dst.Close()
	return n
}

var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// idleReader pushes the read deadline back before every read.
type idleReader struct {
	c    net.Conn
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(r.idle))
	return r.c.Read(p)
}
