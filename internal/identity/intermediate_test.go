package identity

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// opCert is one certificate of an operator's PKI with its key.
type opCert struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func (c opCert) certPEM() []byte { return certsPEM([]*x509.Certificate{c.cert}) }

func (c opCert) keyPEM(t *testing.T) []byte {
	k, err := keyPEM(c.key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// opIssue creates a certificate from tmpl signed by parent (self-signed when parent is nil).
func opIssue(t *testing.T, tmpl *x509.Certificate, parent *opCert, key crypto.Signer) opCert {
	t.Helper()
	if key == nil {
		key = p256(t)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	}
	signerCert, signerKey := tmpl, key
	if parent != nil {
		signerCert, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return opCert{c, key}
}

func caTemplate(name string, now time.Time, life time.Duration) *x509.Certificate {
	return &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(life),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
}

func TestIntermediateCA(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	opts := CAOptions{TrustDomain: "mesh.local", Now: clk.Now}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	root := opIssue(t, caTemplate("corp root", now, 10*365*24*time.Hour), nil, rsaKey)
	policy := opIssue(t, caTemplate("corp policy CA", now, 5*365*24*time.Hour), &root, nil)
	inter := opIssue(t, caTemplate("mesh intermediate", now, 365*24*time.Hour), &policy, nil)

	ca, err := NewIntermediateCA(inter.certPEM(), inter.keyPEM(t), append(policy.certPEM(), root.certPEM()...), opts)
	if err != nil {
		t.Fatal(err)
	}
	if b := ca.Bundle(); len(b) != 1 || !b[0].Equal(root.cert) || ca.Kind() != KindIntermediate {
		t.Fatalf("bundle %d roots, kind %s", len(b), ca.Kind())
	}
	chain, err := ca.Sign(csrFor(t, p256(t), []string{shopOrders}, nil, nil), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 3 {
		t.Fatalf("chain of %d, want leaf, intermediate, policy CA", len(chain))
	}
	if err := verifyLeaf(chain, []*x509.Certificate{root.cert}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.ServingCertificate([]string{"localhost"}, nil); err != nil {
		t.Fatal(err)
	}
	data, err := ca.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.BeginRootRotation(); !errors.Is(err, ErrRotation) {
		t.Errorf("root rotation of an intermediate CA: %v", err)
	}

	uri := func(s string) []*url.URL { u, _ := url.Parse(s); return []*url.URL{u} }
	expired := caTemplate("expired", now, -time.Minute)
	notCA := caTemplate("leaf", now, time.Hour*24)
	notCA.IsCA, notCA.KeyUsage = false, x509.KeyUsageDigitalSignature
	noCertSign := caTemplate("no cert sign", now, 24*time.Hour)
	noCertSign.KeyUsage = x509.KeyUsageDigitalSignature
	otherTD := caTemplate("other td", now, 24*time.Hour)
	otherTD.URIs = uri("spiffe://other.local")
	ownTD := caTemplate("own td", now, 24*time.Hour)
	ownTD.URIs = uri("spiffe://mesh.local")
	excluded := caTemplate("excluded", now, 24*time.Hour)
	excluded.ExcludedURIDomains = []string{"mesh.local"}
	permittedOther := caTemplate("permits another domain", now, 24*time.Hour)
	permittedOther.PermittedURIDomains = []string{"other.local"}
	permitted := caTemplate("permits the domain", now, 24*time.Hour)
	permitted.PermittedURIDomains = []string{"mesh.local"}
	short := caTemplate("short", now, 30*time.Second)

	issue := func(tmpl *x509.Certificate) opCert { return opIssue(t, tmpl, &root, nil) }
	rootPEM := root.certPEM()
	good := issue(caTemplate("good", now, 24*time.Hour))
	// with returns the files of c: its certificate, its key and the chain rootPEM.
	with := func(c opCert) [3][]byte { return [3][]byte{c.certPEM(), c.keyPEM(t), rootPEM} }
	tests := []struct {
		desc  string
		files [3][]byte // certificate, key, chain
		want  string    // "" accepts
	}{
		{"own trust domain URI", with(issue(ownTD)), ""},
		{"URI constraint permitting the domain", with(issue(permitted)), ""},
		{"chain in the cert file", [3][]byte{append(good.certPEM(), rootPEM...), good.keyPEM(t), nil}, ""},
		{"key of another certificate", [3][]byte{good.certPEM(), inter.keyPEM(t), rootPEM}, "key does not match"},
		{"no key", [3][]byte{good.certPEM(), []byte("junk"), rootPEM}, "no PEM private key"},
		{"no certificate", [3][]byte{nil, good.keyPEM(t), rootPEM}, "no PEM certificate"},
		{"not a CA", with(issue(notCA)), "not a CA certificate"},
		{"no certSign usage", with(issue(noCertSign)), "certSign"},
		{"expired", with(issue(expired)), "not now"},
		{"expires within MinTTL", with(issue(short)), "for at least"},
		{"no root in the chain", [3][]byte{inter.certPEM(), inter.keyPEM(t), policy.certPEM()}, "no root"},
		{"missing link", [3][]byte{inter.certPEM(), inter.keyPEM(t), rootPEM}, "does not chain"},
		{"another trust domain's URI", with(issue(otherTD)), "trust domain"},
		{"URI constraint excluding the domain", with(issue(excluded)), "would not verify"},
		{"URI constraint for another domain", with(issue(permittedOther)), "would not verify"},
	}
	for _, tc := range tests {
		_, err := NewIntermediateCA(tc.files[0], tc.files[1], tc.files[2], opts)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.desc, err)
		case tc.want != "" && (!errors.Is(err, ErrBadIntermediate) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v (want %q)", tc.desc, err, tc.want)
		}
	}
}

// TestReplaceIntermediate replaces an operator intermediate by one under a new root: the new
// root joins the bundle, the new intermediate signs after the propagation time, and the old
// root leaves after MaxTTL. An intermediate under the same root signs at once.
func TestReplaceIntermediate(t *testing.T) {
	clk := newClock()
	now := clk.Now()
	opts := CAOptions{TrustDomain: "mesh.local", CertTTL: time.Hour, MaxTTL: time.Hour, Propagation: time.Minute, Now: clk.Now}
	root1 := opIssue(t, caTemplate("root 1", now, 10*365*24*time.Hour), nil, nil)
	root2 := opIssue(t, caTemplate("root 2", now, 10*365*24*time.Hour), nil, nil)
	i1 := opIssue(t, caTemplate("i1", now, 365*24*time.Hour), &root1, nil)
	i1b := opIssue(t, caTemplate("i1b", now, 365*24*time.Hour), &root1, nil)
	i2 := opIssue(t, caTemplate("i2", now, 365*24*time.Hour), &root2, nil)
	ca, err := NewIntermediateCA(i1.certPEM(), i1.keyPEM(t), root1.certPEM(), opts)
	if err != nil {
		t.Fatal(err)
	}
	csr := csrFor(t, p256(t), []string{shopOrders}, nil, nil)
	signedBy := func(want opCert) {
		t.Helper()
		chain, err := ca.Sign(csr, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := mustLeaf(t, chain).CheckSignatureFrom(want.cert); err != nil {
			t.Errorf("not signed by %s", want.cert.Subject)
		}
		if err := verifyLeaf(chain, ca.Bundle(), clk.Now()); err != nil {
			t.Error(err)
		}
	}
	// Same root: at once, nothing retires.
	if err := ca.ReplaceIntermediate(i1b.certPEM(), i1b.keyPEM(t), root1.certPEM()); err != nil {
		t.Fatal(err)
	}
	if r := ca.Rotation(); r.Phase != PhaseStable || r.Roots != 1 {
		t.Fatalf("same-root replacement: %v", r)
	}
	signedBy(i1b)
	// New root: propagation, overlap, retirement.
	if err := ca.ReplaceIntermediate(i2.certPEM(), i2.keyPEM(t), root2.certPEM()); err != nil {
		t.Fatal(err)
	}
	if r := ca.Rotation(); r.Phase != PhasePropagating || r.Roots != 2 {
		t.Fatalf("new-root replacement: %v", r)
	}
	if err := ca.ReplaceIntermediate(i1.certPEM(), i1.keyPEM(t), root1.certPEM()); !errors.Is(err, ErrRotation) {
		t.Errorf("replacement during a rotation: %v", err)
	}
	signedBy(i1b)
	clk.Add(time.Minute)
	if changed, _ := ca.Advance(); !changed {
		t.Fatal("no switch")
	}
	signedBy(i2)
	clk.Add(time.Hour)
	if changed, _ := ca.Advance(); !changed {
		t.Fatal("no retirement")
	}
	if b := ca.Bundle(); len(b) != 1 || !b[0].Equal(root2.cert) {
		t.Errorf("bundle after retirement: %d roots", len(b))
	}
	if err := ca.ReplaceIntermediate(i1.certPEM(), []byte("junk"), root1.certPEM()); !errors.Is(err, ErrBadIntermediate) {
		t.Errorf("bad replacement: %v", err)
	}
}
