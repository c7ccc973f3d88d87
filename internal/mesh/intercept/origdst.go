package intercept

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OriginalDst returns the destination a redirected TCP connection was addressed to before
// Install's rules redirected it, read with SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST for IPv6) on
// c's own socket (c must be the *net.TCPConn from Accept, not a TLS or other wrapper). For a
// connection that reached the listener directly the result is the listener's own address, so a
// sidecar should refuse connections whose original destination is one of its own listeners.
func OriginalDst(c net.Conn) (netip.AddrPort, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("intercept: original destination: %T has no socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("intercept: original destination: %w", err)
	}
	local, ok := c.LocalAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("intercept: original destination: %v is not a TCP address", c.LocalAddr())
	}
	v4 := local.AddrPort().Addr().Unmap().Is4()
	var (
		dst     netip.AddrPort
		sockErr error
	)
	err = rc.Control(func(fd uintptr) {
		if v4 {
			dst, sockErr = originalDst4(fd)
		} else {
			dst, sockErr = originalDst6(fd)
		}
	})
	if err == nil {
		err = sockErr
	}
	if errors.Is(err, unix.ENOENT) {
		return netip.AddrPort{}, fmt.Errorf("intercept: original destination: connection not tracked: %w", err)
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("intercept: original destination: %w", err)
	}
	return dst, nil
}

// ip6tSOOriginalDst is IP6T_SO_ORIGINAL_DST from linux/netfilter_ipv6/ip6_tables.h.
const ip6tSOOriginalDst = 80

func originalDst4(fd uintptr) (netip.AddrPort, error) {
	var sa unix.RawSockaddrInet4
	if err := getsockopt(fd, unix.SOL_IP, unix.SO_ORIGINAL_DST, unsafe.Pointer(&sa), unsafe.Sizeof(sa)); err != nil {
		return netip.AddrPort{}, err
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port), nil
}

func originalDst6(fd uintptr) (netip.AddrPort, error) {
	var sa unix.RawSockaddrInet6
	if err := getsockopt(fd, unix.SOL_IPV6, ip6tSOOriginalDst, unsafe.Pointer(&sa), unsafe.Sizeof(sa)); err != nil {
		return netip.AddrPort{}, err
	}
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), nil
}

func getsockopt(fd uintptr, level, name int, val unsafe.Pointer, size uintptr) error {
	l := uint32(size)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, uintptr(level), uintptr(name), uintptr(val), uintptr(unsafe.Pointer(&l)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
