package engine

import (
	"errors"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Deadline headers a client may send to bound its own request. A client can shorten the route's
// deadline this way, never extend it. Each time the request goes upstream the headers it carried
// are rewritten with the time left, so the next hop sees the deadline shrunk by the time spent.
const (
	// GRPCTimeoutHeader is gRPC's deadline header: a number of at most 8 digits and a unit
	// (H, M, S, m, u, n).
	GRPCTimeoutHeader = "Grpc-Timeout"
	// TimeoutMsHeader is meshgate's deadline header for any request: milliseconds left.
	TimeoutMsHeader = "X-Meshgate-Timeout-Ms"
)

var errDeadlinePassed = errors.New("engine: the request's deadline passed before it could be sent upstream")

// applyClientDeadline shortens x's deadline to what the client's deadline headers allow.
func applyClientDeadline(x *proxy.Exchange) {
	for _, f := range x.Req.Header {
		var d time.Duration
		var ok bool
		switch {
		case httpmsg.EqualFold(f.Name, GRPCTimeoutHeader):
			d, ok = parseGRPCTimeout(f.Value)
		case httpmsg.EqualFold(f.Name, TimeoutMsHeader):
			var ms uint64
			ms, ok = parseUint(f.Value)
			d = time.Duration(min(ms, uint64(1<<62)/uint64(time.Millisecond))) * time.Millisecond
		default:
			continue
		}
		if !ok {
			continue
		}
		if c := x.Start.Add(d); x.Deadline.IsZero() || c.Before(x.Deadline) {
			x.Deadline = c
		}
	}
}

// propagateDeadline rewrites the deadline headers the request carries with the time left. It
// fails when no time is left.
func propagateDeadline(x *proxy.Exchange) error {
	if x.Deadline.IsZero() {
		return nil
	}
	left := time.Until(x.Deadline)
	if left <= 0 {
		return proxy.Fail(504, proxy.ReasonUpstreamTimeout, errDeadlinePassed)
	}
	h := x.Req.Header
	for i := range h {
		switch {
		case httpmsg.EqualFold(h[i].Name, GRPCTimeoutHeader):
			h[i].Value = formatGRPCTimeout(left)
		case httpmsg.EqualFold(h[i].Name, TimeoutMsHeader):
			h[i].Value = strconv.FormatInt(max(left.Milliseconds(), 1), 10)
		}
	}
	return nil
}

// parseGRPCTimeout parses a grpc-timeout value such as "100m" or "5S".
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, ok := parseUint(v[:len(v)-1])
	if !ok {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > uint64((1<<63-1)/unit) {
		return 1<<63 - 1, true
	}
	return time.Duration(n) * unit, true
}

// formatGRPCTimeout writes d in the finest unit whose value fits gRPC's 8 digits.
func formatGRPCTimeout(d time.Duration) string {
	units := [...]struct {
		d time.Duration
		c byte
	}{{time.Nanosecond, 'n'}, {time.Microsecond, 'u'}, {time.Millisecond, 'm'}, {time.Second, 'S'}, {time.Minute, 'M'}, {time.Hour, 'H'}}
	for _, u := range units {
		if v := d / u.d; v < 1e8 {
			return strconv.FormatInt(int64(max(v, 1)), 10) + string(u.c)
		}
	}
	return "99999999H"
}

func parseUint(s string) (uint64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
