// Package sidecar is the proxy beside one workload, driven by the control plane. It runs the
// same engine as the gateway (one gateway.Gateway: compile, swap, pools, policies); what makes
// it a sidecar is the config it derives from what the control plane pushes and the two
// connection fronts it puts before the engine:
//
//   - inbound (default :15006): mutual TLS from mesh peers, their SPIFFE identity checked, the
//     workload port chosen by the TLS server name; HTTP goes to the engine's inbound listener
//     for that port (the service's authz, with identities, then the workload on localhost);
//     opaque TCP is authorized by identity and relayed. Plaintext is refused (strict) or, for a
//     permissive service, served without an identity.
//   - outbound (default 127.0.0.1:15001): the workload's calls. In explicit mode the workload
//     calls http://SERVICE.NAMESPACE.mesh through this port; in transparent mode nftables
//     redirects its TCP here and the original destination (a service's virtual IP) says which
//     service it wanted. HTTP goes through the engine's outbound routes (the same routing, load
//     balancing, retries, timeouts, breakers, outlier detection and rate limits as at the edge);
//     opaque TCP is relayed over mutual TLS to an endpoint picked by the same cluster.
//
// The sidecar registers its workload only once it has a config and a certificate (a readiness
// gate), reports it draining on shutdown before it stops serving, and ends when a job it runs
// ends.
package sidecar
