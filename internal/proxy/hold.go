package proxy

import (
	"fmt"
	"time"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ResponseHold lets a policy keep an upstream response from reaching the client, to act on it
// instead (a retry). Transports ask it after reading a response head and before writing it
// downstream.
type ResponseHold interface {
	// Hold reports whether resp should be held back. A policy that says yes has committed to
	// acting on it (for a retry: it has taken the retry budget already).
	Hold(x *Exchange, resp *httpmsg.Response) bool
}

// HeldResponse is the error a transport returns when a ResponseHold held the response back. The
// response's body was discarded.
type HeldResponse struct {
	// Status is the held response's status code.
	Status int
	// RetryAfter is the wait its Retry-After header asked for, or 0.
	RetryAfter time.Duration
}

// Error implements error.
func (h *HeldResponse) Error() string {
	return fmt.Sprintf("upstream answered %d; held for a retry", h.Status)
}
