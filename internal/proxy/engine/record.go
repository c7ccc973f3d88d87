package engine

import (
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/observe/record"
	"github.com/meshgate/meshgate/internal/proxy"
)

// Recorder says where the engine publishes a record of every request and what the proxy is.
type Recorder struct {
	// Hub receives the records.
	Hub *record.Hub
	// Proxy is the proxy's name; Role "gateway" or "sidecar".
	Proxy, Role string
	// Self is the sidecar's own service ("SERVICE.NAMESPACE"), the source of its outbound calls.
	Self string
	// Direction returns a listener's direction ("edge", "inbound" or "outbound"); nil: "edge".
	Direction func(listener string) string
}

// SetRecorder makes the engine publish a record of every request to r.Hub. Call it before the
// first Apply.
func (e *Engine) SetRecorder(r *Recorder) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recorder = r
}

// record publishes what the exchange did.
func (r *Recorder) record(x *proxy.Exchange, status int, d time.Duration) {
	dir := "edge"
	if r.Direction != nil {
		dir = r.Direction(x.Listener)
	}
	rec := record.Record{
		Time: x.Start, RequestID: x.ID, Proxy: r.Proxy, Role: r.Role, Direction: dir,
		Listener: x.Listener, Route: x.Route, Service: x.Service, Endpoint: x.Endpoint,
		Method: x.Req.Method, Host: x.Req.Host, Path: x.Req.Path, Status: status, Reason: x.Reason,
		Attempts: x.Attempts, Authz: x.Decision, Duration: d, Upstream: x.UpstreamDuration,
	}
	switch {
	case x.PeerID != "":
		rec.Source = ServiceOfID(x.PeerID)
	case dir == "outbound":
		rec.Source = r.Self
	case x.ClientIP.IsValid() && x.PeerText != "" && x.ClientIP == x.Peer.Addr().Unmap():
		rec.Source = x.PeerText // formatted once per connection
	case x.ClientIP.IsValid():
		rec.Source = x.ClientIP.String()
	}
	if id := x.Identity; id != nil {
		rec.Consumer, rec.Plan = id.Consumer, id.Plan
	} else {
		rec.Consumer, rec.Plan = x.EdgeConsumer, x.EdgePlan
	}
	if dir == "edge" {
		rec.EdgeRoute = x.Route
	} else {
		rec.EdgeRoute = x.EdgeRoute
	}
	if x.Err != nil && status >= 400 {
		rec.Error = x.Err.Error()
	}
	r.Hub.Publish(&rec)
}

// ServiceOfID returns "SERVICE.NAMESPACE" for a workload ID "spiffe://TD/ns/NAMESPACE/sa/SERVICE",
// or the ID itself when it is not one.
func ServiceOfID(id string) string {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return id
	}
	parts := strings.Split(rest, "/")
	if len(parts) == 5 && parts[1] == "ns" && parts[3] == "sa" {
		return parts[4] + "." + parts[2]
	}
	return id
}
