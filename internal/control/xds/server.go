package xds

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	cplog "github.com/envoyproxy/go-control-plane/pkg/log"
	sotwv3 "github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/meshgate/meshgate/internal/config"
)

// snapshotKey is the one cache key every node maps to: all xDS clients see the same snapshot.
const snapshotKey = "mesh"

// allNodes is the cache's node hash: it maps every node to snapshotKey, so one SetSnapshot
// serves every client, including nodes that connect later, whatever their node id.
type allNodes struct{}

// ID implements cache.NodeHash.
func (allNodes) ID(*corev3.Node) string { return snapshotKey }

// Options configure a Server.
type Options struct {
	// Log receives NACK warnings and the xDS library's own messages. Default slog.Default().
	Log *slog.Logger
	// Registerer registers the server's metrics (meshgate_control_xds_*). Default: none
	// (the metrics are kept but not exported).
	Registerer prometheus.Registerer
}

// Server serves the control plane's state over xDS (ADS and the separate LDS, RDS, CDS and EDS
// services, state of the world and delta) from one go-control-plane snapshot cache in ADS mode.
// Every client gets the same snapshot. It is safe for concurrent use.
type Server struct {
	log     *slog.Logger
	cache   cache.SnapshotCache
	xds     serverv3.Server
	streams *tracker

	mu      sync.Mutex // serialises Update
	version string
}

// New returns a Server with no snapshot: clients that connect before the first Update wait.
func New(opts Options) *Server {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "xds")
	s := &Server{
		log:     log,
		cache:   cache.NewSnapshotCache(true, allNodes{}, libLogger(log)),
		streams: newTracker(log, newMetrics(opts.Registerer)),
	}
	s.xds = serverv3.NewServer(context.Background(), s.cache, s.streams, sotwv3.WithLogger(libLogger(log)))
	return s
}

// Register registers the aggregated discovery service (ADS) and the separate listener, route,
// cluster and endpoint discovery services on g. Call it before g serves.
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterRouteDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	endpointservice.RegisterEndpointDiscoveryServiceServer(g, s.xds)
}

// Update translates a resolved config (state.State.Resolve) into a snapshot at version and
// serves it to every client. version must differ from the previous one for clients to be sent
// the change (the control plane's state version does). On a translation error, which names the
// object, the previous snapshot keeps being served.
func (s *Server) Update(version string, cfg *config.Config) error {
	snap, err := Translate(version, cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cache.SetSnapshot(context.Background(), snapshotKey, snap); err != nil {
		return fmt.Errorf("xds: set snapshot %s: %w", version, err)
	}
	s.version = version
	return nil
}

// Version returns the version of the snapshot being served, or "" before the first Update.
func (s *Server) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version
}

// Status returns one entry per open xDS stream and resource type, sorted by stream and type.
func (s *Server) Status() []ClientStatus { return s.streams.status() }

// libLogger adapts slog to go-control-plane's logger; its chatter goes to debug.
func libLogger(log *slog.Logger) cplog.Logger {
	return cplog.LoggerFuncs{
		DebugFunc: func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) },
		InfoFunc:  func(f string, a ...any) { log.Debug(fmt.Sprintf(f, a...)) },
		WarnFunc:  func(f string, a ...any) { log.Warn(fmt.Sprintf(f, a...)) },
		ErrorFunc: func(f string, a ...any) { log.Error(fmt.Sprintf(f, a...)) },
	}
}
