package engine

import (
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster"
)

// endpointUpdate is a running service whose new config differs only in its endpoints.
type endpointUpdate struct {
	s           *service
	svc         *config.Service
	fingerprint string // cluster.Fingerprint(svc)
}

// idleCloser is a transport that can close its idle connections to one endpoint. The HTTP/1
// transport is one; the HTTP/2 one is not, and its connections to a removed endpoint close when
// they have been idle for the pool's idle timeout.
type idleCloser interface {
	CloseIdleTo(addr string)
}

// updateEndpoints gives the service the endpoints of svc in place (see
// cluster.Cluster.UpdateEndpoints) and closes the idle connections to the endpoints it removed;
// connections carrying a request finish it, and are closed when it ends (see retired). Apply calls
// it under Engine.mu.
func (s *service) updateEndpoints(svc *config.Service, fingerprint string) error {
	_, removed, err := s.cluster.UpdateEndpoints(svc)
	if err != nil {
		return err
	}
	s.fingerprint = fingerprint
	for _, ep := range removed {
		s.closeIdleTo(ep.Address)
	}
	return nil
}

// retired is called when a request to an endpoint that an update removed has ended: once the last
// such request is over, the connection it returned to the pool is closed, unless an endpoint of
// the service has the address again.
func (s *service) retired(ep *cluster.Endpoint) {
	if ep.Inflight() == 0 && !s.cluster.HasAddress(ep.Address) {
		s.closeIdleTo(ep.Address)
	}
}

// closeIdleTo closes the transport's idle connections to addr, when the transport can.
func (s *service) closeIdleTo(addr string) {
	if c, ok := s.transport.(idleCloser); ok {
		c.CloseIdleTo(addr)
	}
}

// forgetEndpoints deletes the endpoint health series of a closed service for the addresses its
// successor (nil when the service is gone) does not have. Apply calls it after close, once the
// health checks have stopped reporting.
func (s *service) forgetEndpoints(next *service) {
	for _, ep := range s.cluster.Endpoints() {
		if next == nil || !next.cluster.HasAddress(ep.Address) {
			s.metrics.EndpointHealthy.DeleteLabelValues(s.name, ep.Address)
		}
	}
}
