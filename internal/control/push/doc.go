// Package push is meshgate's own config push, both ends of the Discovery.Stream RPC
// (api/controlv1).
//
// The control plane's Server turns each state.State into resources: every listener, route,
// service (endpoints filled in), authenticator, consumer and plan of the resolved config becomes
// one Resource whose body is the JSON of its config type and whose version is a digest of that
// body, plus one "bundle/trust" resource holding the PEM trust bundle. Each object is encoded once
// per state and the bytes are shared by every proxy. A proxy sees only its scope (what a gateway
// or a sidecar for its service needs), computed once per distinct scope and shared by the proxies
// that have it. A stream gets the whole scope first (or only what differs from the versions the
// proxy says it holds) and then only the resources that changed, one response in flight at a time:
// while a response waits for its ACK or NACK, newer states are coalesced.
//
// The proxy's Client merges responses into a Snapshot, applies it whole, ACKs or NACKs it, and
// keeps the last applied snapshot on disk with a checksum, so a proxy restarted while the control
// plane is unreachable serves its last good config (static stability).
package push

// Resource types, as carried in Resource.type and in the "type/name" keys of resource_versions.
const (
	TypeListener      = "listener"
	TypeRoute         = "route"
	TypeService       = "service"
	TypeAuthenticator = "authenticator"
	TypeConsumer      = "consumer"
	TypePlan          = "plan"
	TypeBundle        = "bundle"
	TypeRevocations   = "revocations"
	TypeTelemetry     = "telemetry"
	TypeEdgeKey       = "edgekey"
)

// EdgeKeyName is the name of the one edge context key resource ("edgekey/mesh"): the raw key
// proxies sign and verify the edge context with (see internal/mesh/edgectx).
const EdgeKeyName = "mesh"

// TelemetryName is the name of the one telemetry resource ("telemetry/mesh"): the config's
// top-level telemetry block as JSON, sent to every proxy while the config has one.
const TelemetryName = "mesh"

// RevocationsName is the name of the one revocations resource ("revocations/mesh"): a JSON
// list of state.Revocation, sent to every proxy while it is not empty.
const RevocationsName = "mesh"

// BundleName is the name of the one bundle resource: the key of the trust bundle is
// "bundle/trust".
const BundleName = "trust"

// Node roles.
const (
	RoleGateway = "gateway"
	RoleSidecar = "sidecar"
)

// Key returns the "type/name" key of a resource.
func Key(typ, name string) string { return typ + "/" + name }
