package proxy

import (
	"net"
	"time"
)

// maxDeadlineSlack bounds how much earlier than asked a lazily kept deadline may strike.
const maxDeadlineSlack = 50 * time.Millisecond

// Deadlines keeps the read and write deadlines of one connection and changes them lazily:
// re-arming a deadline for every request costs a runtime timer update each time, so a new
// deadline that is later than the one in place by less than a small slack (1/64 of the time
// left, at most 50ms) leaves the old one. A deadline may so strike up to that slack early, never
// late. Every deadline change on the connection must go through the same Deadlines.
type Deadlines struct {
	read, write time.Time
}

// SetRead sets the read deadline to t (zero: none).
func (d *Deadlines) SetRead(c net.Conn, t time.Time) {
	if moveDeadline(&d.read, t) {
		_ = c.SetReadDeadline(t)
	}
}

// SetWrite sets the write deadline to t (zero: none).
func (d *Deadlines) SetWrite(c net.Conn, t time.Time) {
	if moveDeadline(&d.write, t) {
		_ = c.SetWriteDeadline(t)
	}
}

// Set sets both deadlines to t.
func (d *Deadlines) Set(c net.Conn, t time.Time) {
	r, w := moveDeadline(&d.read, t), moveDeadline(&d.write, t)
	switch {
	case r && w:
		_ = c.SetDeadline(t)
	case r:
		_ = c.SetReadDeadline(t)
	case w:
		_ = c.SetWriteDeadline(t)
	}
}

// unknownDeadline stands for a deadline set without Deadlines: the next change always applies.
var unknownDeadline = time.Unix(1, 0)

// Forget says the connection's deadlines were changed without d. A zero Deadlines is right for
// a new connection, which has none.
func (d *Deadlines) Forget() { d.read, d.write = unknownDeadline, unknownDeadline }

// moveDeadline reports whether the deadline in place, cur, must change to t, and records t when
// it must.
func moveDeadline(cur *time.Time, t time.Time) bool {
	switch {
	case t.IsZero() || cur.IsZero():
		if t.Equal(*cur) {
			return false
		}
	case !t.After(*cur):
		if t.Equal(*cur) {
			return false
		}
	default:
		slack := min(time.Until(t)/64, maxDeadlineSlack)
		if t.Sub(*cur) <= slack {
			return false
		}
	}
	*cur = t
	return true
}
