package procs

import (
	"fmt"
	"net"
	"time"
)

// PortFree reports whether addr can be listened on right now.
func PortFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// FreePorts returns n distinct loopback addresses nothing listens on right now: every listener
// is held until all are chosen, so the kernel cannot hand out one port twice.
func FreePorts(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("procs: free port: %w", err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// WaitListening waits, at most limit, until addr accepts connections or p exits.
func WaitListening(p *Proc, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		if p.Exited() {
			return fmt.Errorf("procs: %s exited during start-up (%v); see its log %s", p.name, p.err, p.log)
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("procs: %s: nothing listening on %s after %s", p.name, addr, limit)
}
