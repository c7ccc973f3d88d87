package xds

import (
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

// FuzzTranslateEndpoint feeds arbitrary endpoint addresses (which come from workload
// registrations) and mesh names through Translate: it must not panic, and what it accepts must
// be a consistent snapshot of resources that pass Envoy's validation rules.
func FuzzTranslateEndpoint(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[fd00::1]:8080", "db.internal:5432", "10.0.0.1", ":80", "[::1]:0", "a:b:c", "\x00:1"} {
		f.Add(s, "users", "shop", "/users")
	}
	f.Fuzz(func(t *testing.T, addr, name, ns, prefix string) {
		cfg := &config.Config{Version: 1,
			Services: []config.Service{{
				Name:      "svc",
				Endpoints: []config.Endpoint{{Address: addr, Weight: 1}},
				Discovery: &config.ServiceDiscovery{Service: name, Namespace: ns},
			}},
			Routes: []config.Route{{Name: "r", Service: "svc",
				Match:    []config.RouteMatch{{Path: &config.PathMatch{Prefix: prefix}}},
				Backends: []config.Backend{{Service: "svc"}}}},
		}
		snap, err := Translate("v", cfg)
		if err != nil {
			return
		}
		if err := snap.Consistent(); err != nil {
			t.Fatalf("accepted an inconsistent snapshot: %v", err)
		}
	})
}
