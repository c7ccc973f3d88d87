package engine

import (
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// peerHold looks at the answers of a mesh service's endpoints (meshgate sidecars) for the ones
// the peer proxy gave itself because its workload could not be reached: 503 with reason
// upstream_unavailable or no_healthy_upstream. Such a call never reached a workload, so it is a
// connect failure of the endpoint: it counts towards outlier detection, and a route that retries
// connect failures retries it, on another endpoint, whatever the method.
type peerHold struct {
	inner proxy.ResponseHold // the route's retry policy, or nil
	// unavailable is set when the answer said the peer's workload was unreachable.
	unavailable bool
}

var _ proxy.ResponseHold = (*peerHold)(nil)

// Hold implements proxy.ResponseHold.
func (h *peerHold) Hold(x *proxy.Exchange, resp *httpmsg.Response) bool {
	if resp.Status == 503 {
		switch reason, _ := resp.Header.Get(proxy.ReasonHeader); reason {
		case proxy.ReasonUpstreamUnavailable, proxy.ReasonNoHealthyUpstream:
			h.unavailable = true
			if p, ok := h.inner.(*retryPolicy); ok && p.on&onConnectFailure != 0 {
				return p.take(x, "connect_failure")
			}
			return false
		}
	}
	return h.inner != nil && h.inner.Hold(x, resp)
}
