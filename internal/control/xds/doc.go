// Package xds serves the control plane's state over xDS, with go-control-plane, so that Envoy and
// proxyless gRPC clients (grpc-go's xds resolver, and the other gRPC languages) can join the
// mesh beside meshgate's own proxies. It translates the same resolved config (state.State.Resolve)
// the push server sends, so the two never disagree.
//
// # Resources
//
// Update translates a resolved config into one snapshot:
//
//   - a Cluster per service, named after the service (EDS over ADS for IP endpoints; STRICT_DNS,
//     or LOGICAL_DNS for a single endpoint, with the endpoints inline for host names), with the
//     connect timeout (pool.connectTimeout), the load-balancing policy (round_robin → ROUND_ROBIN,
//     least_request → LEAST_REQUEST, ring_hash → RING_HASH, maglev → MAGLEV, random → RANDOM),
//     circuit-breaker thresholds, outlier detection (and its panic threshold), the active health
//     check, and HTTP/2 upstream options for http2 and grpc services;
//   - a ClusterLoadAssignment per EDS cluster: one locality of weight 1 holding every endpoint,
//     weights as load_balancing_weight;
//   - for every service with discovery, a Listener and a RouteConfiguration named after its mesh
//     host name "SERVICE.NAMESPACE". The listener is an API listener (an HttpConnectionManager
//     taking the route configuration over ADS, with the router filter): what gRPC looks up for the
//     target "xds:///SERVICE.NAMESPACE". The route configuration has one virtual host for that
//     name whose routes are the config's routes attached to the service (route.service), most
//     specific first as meshgate's router ranks them, then a default route to the service's own
//     cluster.
//
// Route matches map to path, prefix and safe_regex matches, header and query matchers and a
// ":method" header; a segment prefix "/a" becomes the two routes path "/a" and prefix "/a/".
// Backends become a cluster or weighted clusters; the timeout becomes timeout and
// max_stream_duration; the retry policy becomes retry_on, num_retries (attempts - 1), a per-try
// timeout and back-off (the budget has no xDS equivalent). Respond, redirect, rewrite and header
// filters map to Envoy's direct responses, redirects, rewrites and header edits. Policies that
// have none (authentication, authorization, rate limits, faults, mirrors, CORS, the consecutive
// failure breaker, adaptive concurrency) are not translated: meshgate's proxies enforce them.
//
// Proxyless gRPC accepts a subset: it refuses (NACKs) MAGLEV and RANDOM clusters, skips routes
// with query conditions, retries only on gRPC codes and ignores active health checks. A NACK
// leaves the client on its last accepted resources.
//
// # One snapshot for every node
//
// The snapshot cache runs in ADS mode with a node hash that maps every node to one key, so a
// single SetSnapshot serves every client, whatever node id it sends and whenever it connects.
// Clients that connect before the first Update wait for it. Versions must change between updates
// (the control plane's state version does) for clients to be sent the change.
//
// # ACK and NACK
//
// Server callbacks track every stream: its node id and, per resource type, the version last sent,
// the version last ACKed and the last NACK's error and time (Status). NACKs are logged at warn
// level with the node id and counted in meshgate_control_xds_nacks_total{type}; open streams are
// the gauge meshgate_control_xds_streams. The snapshot cache on its own would answer a NACK at
// once with the very snapshot just refused, forever; the callbacks turn a NACK of the latest
// response into a wait for the next snapshot.
//
// # Pointing a client at the control plane
//
// A proxyless grpc-go client imports google.golang.org/grpc/xds, dials "xds:///users.shop" and
// finds the control plane in its bootstrap, given in the file named by GRPC_XDS_BOOTSTRAP or
// inline in GRPC_XDS_BOOTSTRAP_CONFIG:
//
//	{
//	  "xds_servers": [{
//	    "server_uri": "control.mesh.internal:15010",
//	    "channel_creds": [{"type": "insecure"}],
//	    "server_features": ["xds_v3"]
//	  }],
//	  "node": {"id": "users-client-1", "locality": {"zone": "a"}}
//	}
//
// ("channel_creds" may instead be {"type": "tls", "config": {...}} with certificate files.)
//
// Envoy names the control plane as a static cluster and takes everything over ADS:
//
//	node: {id: edge-envoy-1, cluster: edge}
//	dynamic_resources:
//	  ads_config:
//	    api_type: GRPC
//	    transport_api_version: V3
//	    grpc_services: [{envoy_grpc: {cluster_name: meshgate_control}}]
//	  cds_config: {ads: {}, resource_api_version: V3}
//	  lds_config: {ads: {}, resource_api_version: V3}
//	static_resources:
//	  clusters:
//	    - name: meshgate_control
//	      type: STRICT_DNS
//	      typed_extension_protocol_options:
//	        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
//	          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
//	          explicit_http_config: {http2_protocol_options: {}}
//	      load_assignment:
//	        cluster_name: meshgate_control
//	        endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address:
//	          {address: control.mesh.internal, port_value: 15010}}}}]}]
//
// Envoy ignores API listeners it receives over LDS, so it gets the clusters and endpoints, and
// its own listeners route to a mesh service by naming the route configuration
// "SERVICE.NAMESPACE" in an HttpConnectionManager with rds: {config_source: {ads: {}},
// route_config_name: users.shop}.
package xds
