package upstream

import "time"

// CloseIdleTo closes the idle connections to the endpoint at addr, for instance once the endpoint
// has left its service. Connections carrying an exchange are unaffected: they finish it and
// return to the pool (call CloseIdleTo again when they are done to close them too).
func (t *HTTP1) CloseIdleTo(addr string) {
	t.mu.Lock()
	p := t.pools[addr]
	t.mu.Unlock()
	if p != nil {
		p.closeIdle(time.Time{})
	}
}
