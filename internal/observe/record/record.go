// Package record keeps what a proxy saw of its recent requests: a bounded ring of request
// records (for `meshgate explain`), live taps (for `meshgate tap` and `top`), and per-edge
// counters (for the dashboard and `meshgate impact`). Publishing a record costs a struct copy
// into the ring; taps cost nothing while no one taps.
package record

import "time"

// Record is what one proxy saw of one request.
type Record struct {
	// Time is when the request head was read.
	Time time.Time `json:"time"`
	// RequestID is the request's X-Request-Id, the same at every hop.
	RequestID string `json:"requestId"`
	// Proxy and Role name the proxy that saw it ("gateway" or "sidecar").
	Proxy string `json:"proxy"`
	Role  string `json:"role"`
	// Direction is "edge" (a gateway listener), "inbound" (a sidecar's workload called) or
	// "outbound" (a sidecar's workload calling).
	Direction string `json:"direction"`
	// Source is who called: the peer's workload identity, or the client address.
	Source string `json:"source"`
	// Listener, Route, Service and Endpoint say where the request went.
	Listener string `json:"listener"`
	Route    string `json:"route,omitempty"`
	Service  string `json:"service,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	// Method, Host and Path are from the request.
	Method string `json:"method"`
	Host   string `json:"host"`
	Path   string `json:"path"`
	// Status is the status sent back; Reason the reason code when meshgate answered itself.
	Status int    `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Attempts is how many times the request was sent upstream (retries included).
	Attempts int `json:"attempts,omitempty"`
	// Consumer and Plan are who the edge authenticated the request as, and EdgeRoute the public
	// route it came in by (carried to every hop).
	Consumer  string `json:"consumer,omitempty"`
	Plan      string `json:"plan,omitempty"`
	EdgeRoute string `json:"edgeRoute,omitempty"`
	// Authz names the authorization rule that decided, if one ran.
	Authz string `json:"authz,omitempty"`
	// Duration is the whole exchange; Upstream the time the upstream took.
	Duration time.Duration `json:"durationNs"`
	Upstream time.Duration `json:"upstreamNs,omitempty"`
	// Error is the cause of a failure, for explain.
	Error string `json:"error,omitempty"`
}

// Failed reports whether the request failed: a 5xx, or a request meshgate itself refused or
// could not complete (a reason code on a status of 429 or above... other than a redirect).
func (r *Record) Failed() bool { return r.Status >= 500 || r.Status == 0 }
