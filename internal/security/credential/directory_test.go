package credential

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgate/meshgate/internal/config"
)

// digestOf returns the hex SHA-256 of key, as the configuration holds it.
func digestOf(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// hashOf returns a bcrypt hash of password at the lowest cost, to keep tests fast.
func hashOf(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustDirectory(t testing.TB, consumers []config.Consumer) *Directory {
	t.Helper()
	d, err := NewDirectory(consumers)
	if err != nil {
		t.Fatalf("NewDirectory: %v", err)
	}
	return d
}

func TestNewDirectoryRejects(t *testing.T) {
	h := hashOf(t, "pw")
	key := digestOf("k1")
	for _, tc := range []struct {
		name      string
		consumers []config.Consumer
		want      string
	}{
		{"no name", []config.Consumer{{}}, "consumer 0 has no name"},
		{"name twice", []config.Consumer{{Name: "a"}, {Name: "a"}}, `consumer "a" is defined twice`},
		{"not hex", []config.Consumer{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: strings.Repeat("zz", 32)}}}},
			`consumer "a": API key 0: sha256 is not 64 hex digits`},
		{"short digest", []config.Consumer{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key[:62]}}}},
			`consumer "a": API key 0: sha256 is not 64 hex digits`},
		{"digest in two consumers", []config.Consumer{
			{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key, ID: "ka"}}},
			{Name: "b", APIKeys: []config.APIKeyCredential{{SHA256: strings.ToUpper(key)}}},
		}, `API key "` + key[:8] + `" belongs to both consumers "a" and "b"`},
		{"digest twice in one consumer", []config.Consumer{
			{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key, ID: "x"}, {SHA256: key, ID: "y"}}},
		}, `consumer "a" lists API key "y" twice`},
		{"user name twice", []config.Consumer{
			{Name: "a", Basic: &config.BasicCredential{Username: "u", BcryptHash: h}},
			{Name: "b", Basic: &config.BasicCredential{Username: "u", BcryptHash: h}},
		}, `basic user name "u" belongs to both consumers "a" and "b"`},
		{"empty user name", []config.Consumer{{Name: "a", Basic: &config.BasicCredential{BcryptHash: h}}},
			`consumer "a": basic: empty user name`},
		{"colon in user name", []config.Consumer{{Name: "a", Basic: &config.BasicCredential{Username: "u:v", BcryptHash: h}}},
			`user name "u:v" contains ':'`},
		{"bad bcrypt hash", []config.Consumer{{Name: "a", Basic: &config.BasicCredential{Username: "u", BcryptHash: "$2a$10$short"}}},
			`consumer "a": basic: bcryptHash is not a bcrypt hash`},
		{"subject twice", []config.Consumer{
			{Name: "a", Certificate: &config.CertificateCredential{Subjects: []string{"CN=x"}}},
			{Name: "b", Certificate: &config.CertificateCredential{Subjects: []string{"CN=x"}}},
		}, `certificate subject "CN=x" belongs to both consumers "a" and "b"`},
		{"DNS name twice, any case", []config.Consumer{
			{Name: "a", Certificate: &config.CertificateCredential{DNSNames: []string{"svc.example.com"}}},
			{Name: "b", Certificate: &config.CertificateCredential{DNSNames: []string{"SVC.example.com"}}},
		}, `certificate DNS name "svc.example.com" belongs to both consumers "a" and "b"`},
		{"URI twice", []config.Consumer{
			{Name: "a", Certificate: &config.CertificateCredential{URIs: []string{"spiffe://td/a"}}},
			{Name: "b", Certificate: &config.CertificateCredential{URIs: []string{"spiffe://td/a"}}},
		}, `certificate URI "spiffe://td/a" belongs to both consumers "a" and "b"`},
		{"empty URI", []config.Consumer{{Name: "a", Certificate: &config.CertificateCredential{URIs: []string{""}}}},
			`consumer "a": empty certificate URI`},
		{"JWT subject twice", []config.Consumer{
			{Name: "a", JWTSubjects: []string{"s"}},
			{Name: "b", JWTSubjects: []string{"s"}},
		}, `JWT subject "s" belongs to both consumers "a" and "b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDirectory(tc.consumers)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "credential: ") {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestErrorsNeverCarryKey: a key pasted where its digest belongs, or a duplicated digest, is
// reported without the key or the full digest.
func TestErrorsNeverCarryKey(t *testing.T) {
	const key = "mg_live_0123456789abcdef0123456789abcdef0123456789abcdef012345678"
	for _, consumers := range [][]config.Consumer{
		{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key}}}},
		{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key[:64]}}}},
		{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: key, ID: "prod"}}}},
		{
			{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: digestOf(key)}}},
			{Name: "b", APIKeys: []config.APIKeyCredential{{SHA256: digestOf(key)}}},
		},
		{{Name: "a", Basic: &config.BasicCredential{Username: "u", BcryptHash: key}}},
	} {
		_, err := NewDirectory(consumers)
		if err == nil {
			t.Fatalf("NewDirectory(%+v) succeeded", consumers)
		}
		for _, secret := range []string{key, key[:64], digestOf(key)} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q carries a secret", err)
			}
		}
	}
}

func TestByNameAndJWTSubject(t *testing.T) {
	groups := []string{"billing", "internal"}
	d := mustDirectory(t, []config.Consumer{
		{Name: "a", Groups: groups, Plan: "gold", JWTSubjects: []string{"sub-a", "alt-a"}},
		{Name: "b"},
	})
	groups[0] = "changed"
	for _, tc := range []struct {
		lookup func() (*Consumer, bool)
		want   string
	}{
		{func() (*Consumer, bool) { return d.ByName("a") }, "a"},
		{func() (*Consumer, bool) { return d.ByName("b") }, "b"},
		{func() (*Consumer, bool) { return d.ByName("A") }, ""},
		{func() (*Consumer, bool) { return d.ByName("") }, ""},
		{func() (*Consumer, bool) { return d.ByJWTSubject("sub-a") }, "a"},
		{func() (*Consumer, bool) { return d.ByJWTSubject("alt-a") }, "a"},
		{func() (*Consumer, bool) { return d.ByJWTSubject("b") }, ""},
		{func() (*Consumer, bool) { return d.ByJWTSubject("") }, ""},
	} {
		c, ok := tc.lookup()
		if (tc.want == "") == ok || (ok && c.Name != tc.want) {
			t.Errorf("lookup got %+v %v, want %q", c, ok, tc.want)
		}
	}
	a, _ := d.ByName("a")
	if a.Plan != "gold" || len(a.Groups) != 2 || a.Groups[0] != "billing" {
		t.Errorf("consumer a = %+v; want plan gold and the groups as configured (a copy)", a)
	}
}
