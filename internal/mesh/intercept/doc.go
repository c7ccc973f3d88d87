// Package intercept captures one workload's traffic for its sidecar, inside the workload's
// network namespace.
//
// Install puts an nftables table ("inet meshgate") into the current network namespace that
// redirects the workload's outbound TCP to the sidecar's outbound port, inbound TCP from other
// hosts to its inbound port, and DNS queries to its DNS responder. The sidecar recovers a
// redirected connection's destination with OriginalDst and keeps its own connections out of the
// capture with a socket mark (MarkDialer) or by running as a dedicated user.
//
// VIPs hands out one stable virtual IPv4 per service, and DNS answers names under the mesh zone
// with those addresses, so that applications can call services by name.
package intercept
