package mtls

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Dead-peer detection on mesh connections: a peer whose link went down must not hold calls until
// the caller gives up. Data unacknowledged for UserTimeout aborts the connection (the call fails
// as a reset, which the default mesh route retries on another endpoint), and keep-alive probes
// find an idle connection's peer gone within about KeepAliveIdle + 3 × KeepAliveInterval.
//
// TCPConnectTimeout bounds the TCP connect to a peer sidecar: inside a mesh, a peer that does not
// answer a SYN within a second is gone, and the call goes to another endpoint (the service's
// connectTimeout still bounds the whole connect, TLS handshake included).
const (
	TCPConnectTimeout = time.Second
	UserTimeout       = 3 * time.Second
	KeepAliveIdle     = 5 * time.Second
	KeepAliveInterval = time.Second
	keepAliveCount    = 3
)

// tuneTCP applies the dead-peer settings to a mesh connection's socket (best effort: a socket
// that refuses them keeps the kernel's defaults).
func tuneTCP(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: KeepAliveIdle, Interval: KeepAliveInterval, Count: keepAliveCount})
	if rc, err := tc.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(UserTimeout/time.Millisecond))
		})
	}
}
