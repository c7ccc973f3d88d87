package httpmsg

import (
	"net/http"
	"strconv"
	"time"
)

// RetryAfter returns the wait a Retry-After header asks for: delay-seconds or an HTTP date. It is
// 0 when the header is absent, malformed or in the past.
func RetryAfter(h Header) time.Duration {
	v, ok := h.Get("Retry-After")
	if !ok || v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}
