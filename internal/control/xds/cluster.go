package xds

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshgate/meshgate/internal/config"
)

// httpProtocolOptionsKey is the extension key Envoy reads a cluster's upstream HTTP options from.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultConnectTimeout is the config's default pool.connectTimeout.
const defaultConnectTimeout = 5 * time.Second

// adsSource is the config source "over the same ADS stream".
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

// buildCluster translates a service into its Cluster and, when its endpoints are all IP
// addresses, the ClusterLoadAssignment EDS serves for it (nil otherwise: a service with host name
// endpoints becomes a DNS cluster carrying its endpoints inline).
func buildCluster(svc *config.Service) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	connect := svc.Pool.ConnectTimeout
	if connect <= 0 {
		connect = defaultConnectTimeout
	}
	c := &clusterv3.Cluster{
		Name:           svc.Name,
		ConnectTimeout: durationpb.New(connect),
	}
	if err := setLB(c, svc.LoadBalancer); err != nil {
		return nil, nil, err
	}
	if cb := svc.CircuitBreaker; cb != nil {
		c.CircuitBreakers = circuitBreakers(cb)
	}
	if od := svc.OutlierDetection; od != nil {
		c.OutlierDetection = outlierDetection(od)
		if od.PanicThreshold != nil {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{
				HealthyPanicThreshold: &typev3.Percent{Value: float64(*od.PanicThreshold)},
			}
		}
	}
	if hc := svc.HealthCheck; hc != nil {
		c.HealthChecks = []*corev3.HealthCheck{healthCheck(hc)}
	}
	if svc.Protocol == config.UpstreamHTTP2 || svc.Protocol == config.UpstreamGRPC {
		opts, err := anypb.New(&httpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
				ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
					ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
						Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
					},
				},
			},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("protocol options: %w", err)
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: opts}
	}

	cla, allIP, err := loadAssignment(svc)
	if err != nil {
		return nil, nil, err
	}
	if allIP {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		return c, cla, nil
	}
	// Host names: Envoy resolves them itself. One endpoint is a LOGICAL_DNS cluster, which
	// proxyless gRPC also accepts; several are STRICT_DNS (every address of every name).
	kind := clusterv3.Cluster_STRICT_DNS
	if len(svc.Endpoints) == 1 {
		kind = clusterv3.Cluster_LOGICAL_DNS
	}
	c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: kind}
	c.LoadAssignment = cla
	return c, nil, nil
}

// setLB maps the load-balancing policy. Maglev and random are Envoy's; proxyless gRPC
// accepts only round_robin, least_request and ring_hash and refuses (NACKs) the others.
func setLB(c *clusterv3.Cluster, lb config.LoadBalancer) error {
	switch lb.Policy {
	case "", config.LBRoundRobin:
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
	case config.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
	case config.LBRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
			HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH,
		}}
	case config.LBMaglev:
		c.LbPolicy = clusterv3.Cluster_MAGLEV
	case config.LBRandom:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	default:
		return fmt.Errorf("unknown load-balancing policy %q", lb.Policy)
	}
	return nil
}

// circuitBreakers maps the thresholds; the consecutive-failure breaker (consecutiveFailures,
// openFor, halfOpenRequests) has no Envoy equivalent and is left to outlier detection.
func circuitBreakers(cb *config.CircuitBreaker) *clusterv3.CircuitBreakers {
	t := &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
	t.MaxConnections = u32(cb.MaxConnections)
	t.MaxPendingRequests = u32(cb.MaxPendingRequests)
	t.MaxRequests = u32(cb.MaxRequests)
	t.MaxRetries = u32(cb.MaxRetries)
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{t}}
}

// outlierDetection maps outlier detection. A rule the config turns off gets enforcement 0, since
// Envoy enforces consecutive 5xx and success rate by default.
func outlierDetection(od *config.OutlierDetection) *clusterv3.OutlierDetection {
	out := &clusterv3.OutlierDetection{
		EnforcingConsecutive_5Xx:           wrapperspb.UInt32(0),
		EnforcingConsecutiveGatewayFailure: wrapperspb.UInt32(0),
		EnforcingSuccessRate:               wrapperspb.UInt32(0),
		EnforcingFailurePercentage:         wrapperspb.UInt32(0),
	}
	n5xx := 5
	if od.Consecutive5xx != nil {
		n5xx = *od.Consecutive5xx
	}
	if n5xx > 0 {
		out.Consecutive_5Xx = u32(n5xx)
		out.EnforcingConsecutive_5Xx = wrapperspb.UInt32(100)
	}
	if od.ConsecutiveGatewayErrors > 0 {
		out.ConsecutiveGatewayFailure = u32(od.ConsecutiveGatewayErrors)
		out.EnforcingConsecutiveGatewayFailure = wrapperspb.UInt32(100)
	}
	if sr := od.SuccessRate; sr != nil {
		out.EnforcingSuccessRate = wrapperspb.UInt32(100)
		out.SuccessRateMinimumHosts = u32(sr.MinimumHosts)
		out.SuccessRateRequestVolume = u32(sr.RequestVolume)
		if sr.StdevFactor > 0 {
			out.SuccessRateStdevFactor = wrapperspb.UInt32(uint32(sr.StdevFactor*1000 + 0.5))
		}
	}
	out.Interval = dur(od.Interval)
	out.BaseEjectionTime = dur(od.BaseEjectionTime)
	out.MaxEjectionTime = dur(od.MaxEjectionTime)
	if od.MaxEjectionPercent > 0 {
		out.MaxEjectionPercent = u32(min(od.MaxEjectionPercent, 100))
	}
	return out
}

// healthCheck maps an active health check.
func healthCheck(hc *config.HealthCheck) *corev3.HealthCheck {
	interval, timeout := hc.Interval, hc.Timeout
	if interval <= 0 {
		interval = 5 * time.Second
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	unhealthy, healthy := hc.UnhealthyThreshold, hc.HealthyThreshold
	if unhealthy <= 0 {
		unhealthy = 3
	}
	if healthy <= 0 {
		healthy = 2
	}
	out := &corev3.HealthCheck{
		Interval:           durationpb.New(interval),
		Timeout:            durationpb.New(timeout),
		UnhealthyThreshold: u32(unhealthy),
		HealthyThreshold:   u32(healthy),
	}
	if h := hc.HTTP; h != nil {
		path := h.Path
		if path == "" {
			path = "/"
		}
		check := &corev3.HealthCheck_HttpHealthCheck{Path: path, Host: h.Host}
		for _, s := range h.ExpectedStatuses {
			check.ExpectedStatuses = append(check.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
		}
		out.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: check}
	} else {
		out.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	}
	return out
}

// loadAssignment builds the service's endpoints in one locality of weight 1 (proxyless gRPC
// ignores localities without a weight). allIP reports whether every address is an IP address.
func loadAssignment(svc *config.Service) (cla *endpointv3.ClusterLoadAssignment, allIP bool, err error) {
	cla = &endpointv3.ClusterLoadAssignment{ClusterName: svc.Name}
	allIP = true
	var lbs []*endpointv3.LbEndpoint
	for i, ep := range svc.Endpoints {
		host, port, err := splitAddress(ep.Address)
		if err != nil {
			return nil, false, fmt.Errorf("endpoints[%d]: %w", i, err)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			allIP = false
		}
		w := ep.Weight
		if w < 1 {
			w = 1
		}
		lbs = append(lbs, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Protocol:      corev3.SocketAddress_TCP,
					Address:       host,
					PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
				}}},
			}},
			LoadBalancingWeight: u32(w),
		})
	}
	if len(lbs) > 0 {
		cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{
			Locality:            &corev3.Locality{},
			LoadBalancingWeight: wrapperspb.UInt32(1),
			LbEndpoints:         lbs,
		}}
	}
	return cla, allIP, nil
}

// splitAddress parses "host:port" with a port in 1-65535.
func splitAddress(addr string) (string, uint32, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("address %q: no host", addr)
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("address %q: bad port %q", addr, p)
	}
	return host, uint32(port), nil
}

// u32 wraps a positive int, or returns nil (unset) for zero and below.
func u32(n int) *wrapperspb.UInt32Value {
	if n <= 0 {
		return nil
	}
	if n > int(^uint32(0)>>1) {
		n = int(^uint32(0) >> 1)
	}
	return wrapperspb.UInt32(uint32(n))
}

// dur wraps a positive duration, or returns nil (unset) for zero and below.
func dur(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}
