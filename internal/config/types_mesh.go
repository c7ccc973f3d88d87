package config

// ServiceMesh makes calls to a service mutual TLS between meshgate proxies: every endpoint is
// the inbound port of a meshgate sidecar, which must present the workload identity Identity and
// forwards the call to its workload's port Port. The control plane sets it on services whose
// registered workloads run a sidecar; it is rarely written by hand, and only proxies that hold
// a mesh identity (a gateway or sidecar on the control plane) can call such a service.
type ServiceMesh struct {
	// Identity is the SPIFFE ID every endpoint must present, for example
	// "spiffe://mesh.local/ns/shop/sa/greeter". Required.
	Identity string `yaml:"identity" json:"identity"`
	// Port is the name of the workload port the peer sidecar forwards the call to; it travels as
	// the TLS server name. Default: the workload's only port.
	Port string `yaml:"port,omitempty" json:"port,omitempty"`
	// AppProtocol is the protocol the workload speaks on that port: "http1", "http2", "grpc" or
	// "tcp". Calls between sidecars keep it over the mutual TLS connection (negotiated by ALPN).
	// Default "http1".
	AppProtocol string `yaml:"appProtocol,omitempty" json:"appProtocol,omitempty"`
}

// Mesh application protocols (ServiceMesh.AppProtocol): the upstream protocols plus opaque TCP.
const (
	// AppTCP is an opaque TCP port: bytes are relayed over the mutual TLS connection as they are.
	AppTCP = "tcp"
)

// Inbound mTLS modes (ServiceInbound.MTLS).
const (
	// MTLSStrict accepts only mutual TLS from mesh peers; plaintext connections are refused.
	MTLSStrict = "strict"
	// MTLSPermissive accepts mutual TLS from mesh peers and, on the workload's ports, plaintext
	// from clients outside the mesh (which have no identity, so identity rules never match them).
	MTLSPermissive = "permissive"
)

// ServiceInbound configures how a mesh service's sidecars accept calls.
type ServiceInbound struct {
	// MTLS is "strict" (only mutual TLS from mesh peers) or "permissive" (plaintext from
	// outside the mesh too, during a migration). Default "strict".
	MTLS string `yaml:"mtls,omitempty" json:"mtls,omitempty"`
}
