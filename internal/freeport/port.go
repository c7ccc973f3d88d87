// Package freeport picks loopback ports for processes to bind later (the local mesh of
// `meshgate up`, and tests). The usual way, listening on port 0 and closing, picks a port from
// the kernel's ephemeral range, which outgoing connections also draw their source ports from: on
// a busy machine one of them can take the port before it is bound ("address already in use").
// Ports here come from below that range, are checked free when picked, and are never handed out
// twice by one process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the first port handed out.
const lowest = 10000

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Loopback returns "127.0.0.1:PORT" with a port that is free now and that no other caller in
// this process got.
func Loopback() (string, error) {
	top := ephemeralStart()
	mu.Lock()
	defer mu.Unlock()
	if top-lowest > 1000 {
		for range 1000 {
			p := lowest + rand.IntN(top-lowest)
			if used[p] {
				continue
			}
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				continue
			}
			_ = ln.Close()
			used[p] = true
			return ln.Addr().String(), nil
		}
	}
	// No room below the ephemeral range: fall back to one the kernel picks.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("freeport: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range (32768 when it cannot tell).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}
