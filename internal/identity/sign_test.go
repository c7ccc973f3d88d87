package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const shopOrders = "spiffe://mesh.local/ns/shop/sa/orders"

func TestSign(t *testing.T) {
	clk := newClock()
	ca, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ec := p256(t)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := csrFor(t, ec, []string{shopOrders}, nil, nil)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-5] ^= 0xff
	refuse := errors.New("token grants shop/users")

	tests := []struct {
		desc      string
		csr       []byte
		authorize func(spiffeid.ID) error
		want      error // nil: signed
		rsa       bool
	}{
		{desc: "good P-256 CSR", csr: good},
		{desc: "P-384", csr: csrFor(t, ec384, []string{shopOrders}, nil, nil)},
		{desc: "Ed25519", csr: csrFor(t, ed, []string{shopOrders}, nil, nil)},
		{desc: "RSA 2048", csr: csrFor(t, rsa2048, []string{shopOrders}, nil, nil), rsa: true},
		{desc: "RSA 1024", csr: csrFor(t, rsa1024, []string{shopOrders}, nil, nil), want: ErrUnsupportedKey},
		{desc: "P-224", csr: csrFor(t, ec224, []string{shopOrders}, nil, nil), want: ErrUnsupportedKey},
		{desc: "wrong trust domain", csr: csrFor(t, ec, []string{"spiffe://other.local/ns/shop/sa/orders"}, nil, nil), want: ErrTrustDomain},
		{desc: "two URI SANs", csr: csrFor(t, ec, []string{shopOrders, "spiffe://mesh.local/ns/shop/sa/users"}, nil, nil), want: ErrBadCSR},
		{desc: "no URI SAN", csr: csrFor(t, ec, nil, nil, nil), want: ErrBadCSR},
		{desc: "DNS SAN", csr: csrFor(t, ec, []string{shopOrders}, []string{"orders.shop"}, nil), want: ErrBadCSR},
		{desc: "IP SAN", csr: csrFor(t, ec, []string{shopOrders}, nil, []net.IP{net.IPv4(10, 0, 0, 1)}), want: ErrBadCSR},
		{desc: "not a SPIFFE URI", csr: csrFor(t, ec, []string{"https://mesh.local/ns/shop/sa/orders"}, nil, nil), want: ErrBadCSR},
		{desc: "not a workload path", csr: csrFor(t, ec, []string{"spiffe://mesh.local/users"}, nil, nil), want: ErrBadIdentity},
		{desc: "upper-case namespace", csr: csrFor(t, ec, []string{"spiffe://mesh.local/ns/Shop/sa/orders"}, nil, nil), want: ErrBadIdentity},
		{desc: "the control plane's identity", csr: csrFor(t, ec, []string{"spiffe://mesh.local/ns/meshgate-system/sa/control"}, nil, nil), want: ErrBadIdentity},
		{desc: "bad signature", csr: badSig, want: ErrBadCSR},
		{desc: "garbage", csr: []byte("not a csr"), want: ErrBadCSR},
		{desc: "empty", csr: nil, want: ErrBadCSR},
		{desc: "authorize refuses", csr: good, authorize: func(spiffeid.ID) error { return refuse }, want: ErrNotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			var asked spiffeid.ID
			auth := tc.authorize
			if auth == nil {
				auth = func(id spiffeid.ID) error { asked = id; return nil }
			}
			chain, err := ca.Sign(tc.csr, 0, auth)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if chain != nil {
					t.Fatal("a chain came with the error")
				}
				if tc.want == ErrNotAuthorized && !errors.Is(err, refuse) {
					t.Errorf("the authorize error is not wrapped: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if asked.String() != shopOrders {
				t.Errorf("authorize asked about %q", asked)
			}
			if len(chain) != 1 {
				t.Fatalf("chain of %d for a root CA, want the leaf only", len(chain))
			}
			leaf := mustLeaf(t, chain)
			if err := verifyLeaf(chain, ca.Bundle(), clk.Now()); err != nil {
				t.Fatal(err)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != shopOrders || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
				t.Errorf("SANs %v %v %v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
			}
			if leaf.IsCA || leaf.NotBefore != clk.Now().Add(-30*time.Second) || leaf.NotAfter != clk.Now().Add(24*time.Hour) {
				t.Errorf("CA %v, valid %s..%s", leaf.IsCA, leaf.NotBefore, leaf.NotAfter)
			}
			wantUsage := x509.KeyUsageDigitalSignature
			if tc.rsa {
				wantUsage |= x509.KeyUsageKeyEncipherment
			}
			if leaf.KeyUsage != wantUsage || len(leaf.ExtKeyUsage) != 2 {
				t.Errorf("key usage %v, ext %v", leaf.KeyUsage, leaf.ExtKeyUsage)
			}
			if len(leaf.SubjectKeyId) == 0 || string(leaf.AuthorityKeyId) != string(ca.SigningCertificate().SubjectKeyId) {
				t.Errorf("key ids: subject %x authority %x", leaf.SubjectKeyId, leaf.AuthorityKeyId)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", leaf.SerialNumber)
			}
		})
	}
}

func TestSignTTL(t *testing.T) {
	clk := newClock()
	ca, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", CertTTL: time.Hour, MinTTL: 5 * time.Minute, MaxTTL: 48 * time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	csr := csrFor(t, p256(t), []string{shopOrders}, nil, nil)
	for _, tc := range []struct {
		desc     string
		ttl, got time.Duration
	}{
		{"zero means CertTTL", 0, time.Hour},
		{"within bounds", 3 * time.Hour, 3 * time.Hour},
		{"below MinTTL", time.Second, 5 * time.Minute},
		{"above MaxTTL", 30 * 24 * time.Hour, 48 * time.Hour},
	} {
		chain, err := ca.Sign(csr, tc.ttl, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustLeaf(t, chain).NotAfter.Sub(clk.Now()); got != tc.got {
			t.Errorf("%s: lifetime %s, want %s", tc.desc, got, tc.got)
		}
	}
	// Never past the signing certificate.
	root := ca.SigningCertificate()
	clk.Add(root.NotAfter.Sub(clk.Now()) - time.Hour)
	chain, err := ca.Sign(csr, 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	if na := mustLeaf(t, chain).NotAfter; !na.Equal(root.NotAfter) {
		t.Errorf("leaf ends %s, root %s", na, root.NotAfter)
	}
	// An expired CA signs nothing.
	clk.Add(2 * time.Hour)
	if _, err := ca.Sign(csr, 0, nil); !errors.Is(err, ErrCAExpired) {
		t.Errorf("expired CA: %v", err)
	}
	if _, err := ca.ServingCertificate(nil, nil); !errors.Is(err, ErrCAExpired) {
		t.Errorf("expired CA serving certificate: %v", err)
	}
}

func TestCAOptions(t *testing.T) {
	for _, o := range []CAOptions{
		{TrustDomain: ""},
		{TrustDomain: "Bad Domain"},
		{TrustDomain: "mesh.local", MinTTL: time.Hour, MaxTTL: time.Minute},
		{TrustDomain: "mesh.local", CertTTL: 30 * 24 * time.Hour},
		{TrustDomain: "mesh.local", CertTTL: time.Second},
	} {
		if _, err := NewRootCA(o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	// TTLs down to seconds when configured so.
	if _, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", CertTTL: 4 * time.Second, MinTTL: time.Second, MaxTTL: 4 * time.Second}); err != nil {
		t.Error(err)
	}
}

func TestServingCertificate(t *testing.T) {
	clk := newClock()
	ca, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", CertTTL: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ServingCertificate([]string{"localhost", "control.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := c.Leaf
	if leaf.URIs[0].String() != "spiffe://mesh.local/ns/meshgate-system/sa/control" || len(leaf.DNSNames) != 2 || len(leaf.IPAddresses) != 1 {
		t.Errorf("SANs %v %v %v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses)
	}
	pool := x509.NewCertPool()
	for _, r := range ca.Bundle() {
		pool.AddCert(r)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "control.example", CurrentTime: clk.Now()}); err != nil {
		t.Error(err)
	}
	if !keyMatches(c.PrivateKey.(crypto.Signer), leaf.PublicKey) {
		t.Error("key does not match")
	}
	if leaf.NotAfter.Sub(clk.Now()) != time.Hour {
		t.Errorf("lifetime %s", leaf.NotAfter.Sub(clk.Now()))
	}
}

// FuzzSign feeds arbitrary bytes to Sign as a CSR: it must never panic, and whatever it signs
// must be a valid workload certificate of the trust domain.
func FuzzSign(f *testing.F) {
	key := p256(f)
	f.Add(csrFor(f, key, []string{shopOrders}, nil, nil))
	f.Add(csrFor(f, key, []string{shopOrders, "spiffe://mesh.local/ns/a/sa/b"}, nil, nil))
	f.Add(csrFor(f, key, []string{"spiffe://other.local/ns/shop/sa/orders"}, []string{"x"}, nil))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte{})
	clk := newClock()
	ca, err := NewRootCA(CAOptions{TrustDomain: "mesh.local", Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, csr []byte) {
		var asked spiffeid.ID
		chain, err := ca.Sign(csr, 0, func(id spiffeid.ID) error { asked = id; return nil })
		if err != nil {
			if chain != nil {
				t.Fatal("chain with an error")
			}
			return
		}
		if err := verifyLeaf(chain, ca.Bundle(), clk.Now()); err != nil {
			t.Fatal(err)
		}
		leaf := mustLeaf(t, chain)
		if len(leaf.URIs) != 1 || len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 || leaf.IsCA {
			t.Fatalf("signed %v %v %v CA=%v", leaf.URIs, leaf.DNSNames, leaf.IPAddresses, leaf.IsCA)
		}
		id, err := spiffeid.FromURI(leaf.URIs[0])
		if err != nil || id != asked || id.TrustDomain() != ca.TrustDomain() {
			t.Fatalf("signed %v, authorized %v: %v", id, asked, err)
		}
		if _, _, err := ParseWorkloadID(id); err != nil {
			t.Fatal(err)
		}
		if err := checkLeafKey(leaf.PublicKey); err != nil {
			t.Fatal(err)
		}
	})
}
