package control

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/control/store"
)

// Registry limits.
const (
	maxWorkloadID = 253
	maxAddresses  = 16
	maxPorts      = 64
	maxLabels     = 64
	maxLabelBytes = 256
)

// registryService answers Registry calls. Every call needs a workload certificate, and a
// workload may only register under the service and namespace of its identity.
type registryService struct {
	controlv1.UnimplementedRegistryServer
	s *Server
}

// Register adds or replaces a workload.
func (rs registryService) Register(ctx context.Context, req *controlv1.RegisterRequest) (*controlv1.RegisterResponse, error) {
	s := rs.s
	c, err := s.peerCaller(ctx)
	if err != nil {
		return nil, s.refuse(ctx, "Register", err)
	}
	w, err := workloadFrom(req.GetWorkload(), c)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			return nil, s.refuse(ctx, "Register", ae)
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(w.Addresses) == 0 {
		if ap, err := netip.ParseAddrPort(peerAddr(ctx)); err == nil {
			w.Addresses = []string{ap.Addr().Unmap().String()}
		}
	}
	now := s.now()
	w.Registered, w.Expires = now, now.Add(s.opts.WorkloadTTL)
	if err := s.store.PutWorkload(ctx, w, s.opts.WorkloadTTL); err != nil {
		return nil, storeStatus(err)
	}
	s.metrics.registrations.WithLabelValues("register").Inc()
	s.log.Info("control: workload registered", "workload", w.ID, "service", w.Key(), "addresses", w.Addresses)
	return &controlv1.RegisterResponse{
		Ttl:               durationpb.New(s.opts.WorkloadTTL),
		HeartbeatInterval: durationpb.New(s.opts.WorkloadTTL / 3),
	}, nil
}

// Heartbeat renews a registration.
func (rs registryService) Heartbeat(ctx context.Context, req *controlv1.HeartbeatRequest) (*controlv1.HeartbeatResponse, error) {
	s := rs.s
	c, err := s.peerCaller(ctx)
	if err != nil {
		return nil, s.refuse(ctx, "Heartbeat", err)
	}
	health := req.GetHealth()
	if health == "" {
		health = state.HealthHealthy
	}
	if !validHealth(health) {
		return nil, status.Errorf(codes.InvalidArgument, "health %q: expected healthy, unhealthy or draining", health)
	}
	if err := rs.owned(ctx, req.GetId(), c); err != nil {
		return nil, err
	}
	if _, err := s.store.RenewWorkload(ctx, req.GetId(), health, s.opts.WorkloadTTL); err != nil {
		return nil, storeStatus(err)
	}
	s.metrics.registrations.WithLabelValues("heartbeat").Inc()
	return &controlv1.HeartbeatResponse{Ttl: durationpb.New(s.opts.WorkloadTTL)}, nil
}

// Deregister removes a registration at once.
func (rs registryService) Deregister(ctx context.Context, req *controlv1.DeregisterRequest) (*controlv1.DeregisterResponse, error) {
	s := rs.s
	c, err := s.peerCaller(ctx)
	if err != nil {
		return nil, s.refuse(ctx, "Deregister", err)
	}
	if err := rs.owned(ctx, req.GetId(), c); err != nil {
		if status.Code(err) == codes.NotFound {
			return &controlv1.DeregisterResponse{}, nil
		}
		return nil, err
	}
	if err := s.store.DeleteWorkload(ctx, req.GetId()); err != nil {
		return nil, storeStatus(err)
	}
	s.metrics.registrations.WithLabelValues("deregister").Inc()
	s.log.Info("control: workload deregistered", "workload", req.GetId())
	return &controlv1.DeregisterResponse{}, nil
}

// owned checks that workload id exists and was registered by the caller's identity.
func (rs registryService) owned(ctx context.Context, id string, c caller) error {
	ws, err := rs.s.store.Workloads(ctx)
	if err != nil {
		return storeStatus(err)
	}
	for i := range ws {
		if ws[i].ID != id {
			continue
		}
		if ws[i].Identity != c.id.String() {
			return rs.s.refuse(ctx, "Registry", &authError{authIdentityMismatch, codes.PermissionDenied,
				fmt.Sprintf("workload %s belongs to %s, not %s", id, ws[i].Identity, c.id)})
		}
		return nil
	}
	return status.Errorf(codes.NotFound, "workload %s is not registered (expired?): register again", id)
}

// workloadFrom checks a registration and converts it, for a caller of identity c.
func workloadFrom(pw *controlv1.Workload, c caller) (state.Workload, error) {
	if pw == nil {
		return state.Workload{}, errors.New("workload is required")
	}
	w := state.Workload{
		ID: pw.GetId(), Service: pw.GetService(), Namespace: pw.GetNamespace(), Version: pw.GetVersion(),
		Labels: pw.GetLabels(), Addresses: pw.GetAddresses(), Health: pw.GetHealth(), Identity: c.id.String(),
		SidecarPort: int(pw.GetSidecarPort()),
	}
	if w.Namespace == "" {
		w.Namespace = config.DefaultNamespace
	}
	if w.Health == "" {
		w.Health = state.HealthHealthy
	}
	switch {
	case w.ID == "" || len(w.ID) > maxWorkloadID:
		return w, fmt.Errorf("workload id must be 1 to %d characters", maxWorkloadID)
	case !config.IsMeshName(w.Service):
		return w, fmt.Errorf("service %q is not a valid mesh service name", w.Service)
	case !config.IsMeshName(w.Namespace):
		return w, fmt.Errorf("namespace %q is not a valid namespace", w.Namespace)
	case !validHealth(w.Health):
		return w, fmt.Errorf("health %q: expected healthy, unhealthy or draining", w.Health)
	case len(w.Addresses) > maxAddresses:
		return w, fmt.Errorf("at most %d addresses", maxAddresses)
	case len(pw.GetPorts()) == 0 || len(pw.GetPorts()) > maxPorts:
		return w, fmt.Errorf("1 to %d ports are required", maxPorts)
	case w.SidecarPort > 65535:
		return w, fmt.Errorf("sidecar port %d is not in 1..65535", w.SidecarPort)
	case len(w.Labels) > maxLabels:
		return w, fmt.Errorf("at most %d labels", maxLabels)
	}
	if w.Service != c.service || w.Namespace != c.namespace {
		return w, &authError{authIdentityMismatch, codes.PermissionDenied,
			fmt.Sprintf("identity %s may only register service %q in namespace %q, not %q in %q",
				c.id, c.service, c.namespace, w.Service, w.Namespace)}
	}
	for k, v := range w.Labels {
		if k == "" || len(k)+len(v) > maxLabelBytes {
			return w, fmt.Errorf("label %q: names must be non-empty and a label at most %d bytes", k, maxLabelBytes)
		}
	}
	for i, a := range w.Addresses {
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return w, fmt.Errorf("address %q is not an IP address", a)
		}
		w.Addresses[i] = ip.Unmap().String()
	}
	names := make(map[string]bool)
	for _, p := range pw.GetPorts() {
		switch {
		case !config.IsMeshName(p.GetName()):
			return w, fmt.Errorf("port name %q is not valid (lower-case letters, digits, '-')", p.GetName())
		case names[p.GetName()]:
			return w, fmt.Errorf("port %q is listed twice", p.GetName())
		case p.GetPort() == 0 || p.GetPort() > 65535:
			return w, fmt.Errorf("port %q: %d is not in 1..65535", p.GetName(), p.GetPort())
		}
		switch p.GetProtocol() {
		case state.PortHTTP1, state.PortHTTP2, state.PortGRPC, state.PortTCP:
		default:
			return w, fmt.Errorf("port %q: protocol %q: expected http1, http2, grpc or tcp", p.GetName(), p.GetProtocol())
		}
		names[p.GetName()] = true
		w.Ports = append(w.Ports, state.Port{Name: p.GetName(), Port: int(p.GetPort()), Protocol: p.GetProtocol()})
	}
	return w, nil
}

func validHealth(h string) bool {
	return h == state.HealthHealthy || h == state.HealthUnhealthy || h == state.HealthDraining
}

// storeStatus maps a store error to a gRPC status.
func storeStatus(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Error(codes.NotFound, "workload is not registered (expired?): register again")
	case errors.Is(err, store.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
