package intercept

import (
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// MarkControl returns a net.Dialer or net.ListenConfig Control function that sets SO_MARK to
// mark on each new socket, so Install's rules with the same ProxyMark let its packets through.
// Setting SO_MARK needs CAP_NET_ADMIN.
func MarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var sockErr error
		if err := c.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return fmt.Errorf("intercept: set SO_MARK: %w", err)
		}
		if sockErr != nil {
			return fmt.Errorf("intercept: set SO_MARK %#x on %s socket: %w", mark, network, sockErr)
		}
		return nil
	}
}

// MarkDialer returns a dialer whose sockets carry SO_MARK mark (see MarkControl), for the
// sidecar's own outgoing connections. Other fields (Timeout, KeepAlive) may be set on the result.
func MarkDialer(mark uint32) *net.Dialer {
	return &net.Dialer{Control: MarkControl(mark)}
}
