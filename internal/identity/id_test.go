package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestWorkloadID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("mesh.local")
	tests := []struct {
		desc, ns, svc, want string
	}{
		{"plain", "shop", "orders", "spiffe://mesh.local/ns/shop/sa/orders"},
		{"digits and dashes", "team-1", "a-b-9", "spiffe://mesh.local/ns/team-1/sa/a-b-9"},
		{"empty namespace", "", "orders", ""},
		{"upper case", "Shop", "orders", ""},
		{"leading dash", "shop", "-orders", ""},
		{"trailing dash", "shop", "orders-", ""},
		{"dot", "shop", "orders.v1", ""},
		{"slash", "shop", "a/b", ""},
		{"too long", "shop", strings.Repeat("a", 64), ""},
	}
	for _, tc := range tests {
		id, err := WorkloadID(td, tc.ns, tc.svc)
		if tc.want == "" {
			if !errors.Is(err, ErrBadIdentity) {
				t.Errorf("%s: %v, %v", tc.desc, id, err)
			}
			continue
		}
		if err != nil || id.String() != tc.want {
			t.Errorf("%s: %v, %v", tc.desc, id, err)
			continue
		}
		ns, svc, err := ParseWorkloadID(id)
		if err != nil || ns != tc.ns || svc != tc.svc {
			t.Errorf("%s: parse back %q %q %v", tc.desc, ns, svc, err)
		}
	}
	if _, err := WorkloadID(spiffeid.TrustDomain{}, "a", "b"); err == nil {
		t.Error("zero trust domain accepted")
	}
	for _, s := range []string{"spiffe://mesh.local", "spiffe://mesh.local/ns/a", "spiffe://mesh.local/ns/a/sa/b/c", "spiffe://mesh.local/x/a/sa/b", "spiffe://mesh.local/ns/a/svc/b"} {
		if _, _, err := ParseWorkloadID(spiffeid.RequireFromString(s)); !errors.Is(err, ErrBadIdentity) {
			t.Errorf("%s: %v", s, err)
		}
	}
	if _, _, err := ParseWorkloadID(spiffeid.ID{}); err == nil {
		t.Error("zero ID parsed")
	}
}

func TestPeerID(t *testing.T) {
	if _, err := PeerID(tls.ConnectionState{}); err == nil {
		t.Error("no certificates: no error")
	}
	u, _ := url.Parse(shopOrders)
	id, err := PeerID(tls.ConnectionState{PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{u}}}})
	if err != nil || id.String() != shopOrders {
		t.Errorf("%v %v", id, err)
	}
	if _, err := PeerID(tls.ConnectionState{PeerCertificates: []*x509.Certificate{{URIs: []*url.URL{u, u}}}}); err == nil {
		t.Error("two URI SANs: no error")
	}
}
