package identity

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ControlNamespace and ControlService name the control plane's own identity:
// spiffe://<trust domain>/ns/meshgate-system/sa/control. The CA never signs it for a CSR.
const (
	ControlNamespace = "meshgate-system"
	ControlService   = "control"
)

// WorkloadID returns the identity of a service in a namespace:
// spiffe://<td>/ns/<namespace>/sa/<service>. Both must be lower-case DNS labels (a-z, 0-9 and
// '-', at most 63 characters, starting and ending with a letter or digit).
func WorkloadID(td spiffeid.TrustDomain, namespace, service string) (spiffeid.ID, error) {
	if td.IsZero() {
		return spiffeid.ID{}, fmt.Errorf("identity: %w: empty trust domain", ErrBadIdentity)
	}
	if err := checkLabel("namespace", namespace); err != nil {
		return spiffeid.ID{}, err
	}
	if err := checkLabel("service", service); err != nil {
		return spiffeid.ID{}, err
	}
	id, err := spiffeid.FromSegments(td, "ns", namespace, "sa", service)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: %w: %w", ErrBadIdentity, err)
	}
	return id, nil
}

// ControlID returns the control plane's identity in a trust domain.
func ControlID(td spiffeid.TrustDomain) spiffeid.ID {
	return spiffeid.RequireFromSegments(td, "ns", ControlNamespace, "sa", ControlService)
}

// ParseWorkloadID returns the namespace and service of a workload identity of the shape
// spiffe://<td>/ns/<namespace>/sa/<service>; any other path is ErrBadIdentity.
func ParseWorkloadID(id spiffeid.ID) (namespace, service string, err error) {
	if id.IsZero() {
		return "", "", fmt.Errorf("identity: %w: empty SPIFFE ID", ErrBadIdentity)
	}
	parts := strings.Split(id.Path(), "/")
	if len(parts) != 5 || parts[0] != "" || parts[1] != "ns" || parts[3] != "sa" {
		return "", "", fmt.Errorf("identity: %w: %s does not have the path /ns/<namespace>/sa/<service>", ErrBadIdentity, id)
	}
	if err := checkLabel("namespace", parts[2]); err != nil {
		return "", "", err
	}
	if err := checkLabel("service", parts[4]); err != nil {
		return "", "", err
	}
	return parts[2], parts[4], nil
}

// PeerID returns the SPIFFE ID in the URI SAN of the peer's leaf certificate. It does not
// verify the certificate: use it on connections whose TLS config verified the peer (such as
// ServerTLSConfig and ClientTLSConfig), or verify the chain first.
func PeerID(cs tls.ConnectionState) (spiffeid.ID, error) {
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("identity: the peer presented no certificate")
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("identity: peer certificate: %w", err)
	}
	return id, nil
}

// checkLabel checks that s is a lower-case DNS label.
func checkLabel(what, s string) error {
	if s == "" {
		return fmt.Errorf("identity: %w: empty %s", ErrBadIdentity, what)
	}
	if len(s) > 63 {
		return fmt.Errorf("identity: %w: %s %q is longer than 63 characters", ErrBadIdentity, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(s)-1
		if !ok {
			return fmt.Errorf("identity: %w: %s %q is not a lower-case DNS label (a-z, 0-9, '-' inside)", ErrBadIdentity, what, s)
		}
	}
	return nil
}
