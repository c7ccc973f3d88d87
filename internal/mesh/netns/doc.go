// Package netns creates and wires Linux network namespaces for the local mesh and for tests.
//
// A Namespace is a named network namespace, visible under /var/run/netns like one made by
// `ip netns add`, so `ip netns exec NAME cmd` works on it. Do runs code inside it; sockets
// created there stay in it. A Bridge on the host joins several namespaces into one layer-2
// segment so they reach each other without IP forwarding; Link wires a single namespace to the
// host point to point.
//
// Callers choose names and should prefix them (for example "mgt-" plus a random suffix) so that
// parallel runs do not clash. Interface names are limited to 15 bytes by the kernel.
package netns
