package credential

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

func TestByAPIKey(t *testing.T) {
	d := mustDirectory(t, []config.Consumer{
		{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: digestOf("key-a1"), ID: "a-prod"}, {SHA256: digestOf("key-a2")}}},
		{Name: "b", APIKeys: []config.APIKeyCredential{{SHA256: strings.ToUpper(digestOf("key-b"))}}},
	})
	for _, tc := range []struct {
		key, consumer, id string
	}{
		{"key-a1", "a", "a-prod"},
		{"key-a2", "a", digestOf("key-a2")[:8]},
		{"key-b", "b", digestOf("key-b")[:8]},
		{"key-a1 ", "", ""},
		{"KEY-A1", "", ""},
		{"", "", ""},
		{digestOf("key-a1"), "", ""},
	} {
		c, id, ok := d.ByAPIKey(tc.key)
		if tc.consumer == "" {
			if ok || c != nil || id != "" {
				t.Errorf("ByAPIKey(%q) = %+v, %q, %v; want no match", tc.key, c, id, ok)
			}
			continue
		}
		if !ok || c.Name != tc.consumer || id != tc.id {
			t.Errorf("ByAPIKey(%q) = %+v, %q, %v; want consumer %q key %q", tc.key, c, id, ok, tc.consumer, tc.id)
		}
	}
}

// TestByAPIKeyConfirmsDigest: finding an entry is not enough; its stored digest must compare
// equal (in constant time) to the digest of the key presented.
func TestByAPIKeyConfirmsDigest(t *testing.T) {
	d := mustDirectory(t, []config.Consumer{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: digestOf("key-a")}}}})
	sum := sha256.Sum256([]byte("key-a"))
	k := d.keys[sum]
	k.digest[31] ^= 1
	d.keys[sum] = k
	if c, _, ok := d.ByAPIKey("key-a"); ok {
		t.Fatalf("matched %+v although the stored digest differs", c)
	}
	k.digest[31] ^= 1
	d.keys[sum] = k
	if _, _, ok := d.ByAPIKey("key-a"); !ok {
		t.Fatal("no match with the digest restored")
	}
}

func BenchmarkByAPIKey(b *testing.B) {
	d := mustDirectory(b, []config.Consumer{{Name: "a", APIKeys: []config.APIKeyCredential{{SHA256: digestOf("key-a")}}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, ok := d.ByAPIKey("key-a"); !ok {
			b.Fatal("no match")
		}
	}
}
