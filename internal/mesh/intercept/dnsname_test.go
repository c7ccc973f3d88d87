package intercept

import (
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		desc, qname, key string
		kind             nameKind
	}{
		{"service", "greeter.shop.mesh.", "greeter.shop", nameService},
		{"upper case", "Greeter.SHOP.Mesh.", "greeter.shop", nameService},
		{"no trailing dot", "greeter.shop.mesh", "greeter.shop", nameService},
		{"apex", "mesh.", "", nameApex},
		{"namespace", "shop.mesh.", "", nameNamespace},
		{"too deep", "a.greeter.shop.mesh.", "", nameInvalid},
		{"underscore", "_grpc.shop.mesh.", "", nameInvalid},
		{"escaped dot", `a\.b.shop.mesh.`, "", nameInvalid},
		{"leading hyphen", "-a.shop.mesh.", "", nameInvalid},
		{"empty label", "a..mesh.", "", nameInvalid},
		{"outside", "example.com.", "", nameOutside},
		{"suffix but not subdomain", "greeter.shopmesh.", "", nameOutside},
		{"search list", "greeter.shop.mesh.svc.cluster.local.", "", nameOutside},
		{"root", ".", "", nameOutside},
	} {
		key, kind := parseName(tc.qname, "mesh.")
		if key != tc.key || kind != tc.kind {
			t.Errorf("%s: parseName(%q) = %q, %v; want %q, %v", tc.desc, tc.qname, key, kind, tc.key, tc.kind)
		}
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"greeter.shop.mesh.", "mesh.", "a.b.c.mesh", `\046.mesh.`, "", ".", "x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, qname string) {
		key, kind := parseName(qname, "mesh.")
		if kind == nameService {
			svc, ns, ok := strings.Cut(key, ".")
			if !ok || !config.IsMeshName(svc) || !config.IsMeshName(ns) {
				t.Fatalf("parseName(%q) gave invalid key %q", qname, key)
			}
			if got := strings.TrimSuffix(strings.ToLower(qname), ".") + "."; got != key+".mesh." {
				t.Fatalf("parseName(%q) = %q does not round-trip", qname, key)
			}
		} else if key != "" {
			t.Fatalf("parseName(%q) = %q with kind %v", qname, key, kind)
		}
	})
}
