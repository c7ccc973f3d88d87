package authz

import (
	"net/netip"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// simplePolicy is a realistic policy without CEL.
func simplePolicy(t testing.TB) *Policy {
	return mustCompile(t, rules(
		deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}}),
		deny("no-debug", config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X-Debug", Present: true}}}),
		deny("blocked-nets", config.AuthzRule{SourceCIDRs: []string{"203.0.113.0/24", "2001:db8:bad::/48"}}),
		allow("ops-writes", config.AuthzRule{
			Groups:  []string{"ops"},
			Methods: []string{"POST", "PUT", "DELETE"},
			Paths:   []config.PathMatch{{Regex: "/orders/[0-9]+"}},
		}),
		allow("scoped", config.AuthzRule{Claims: []config.ClaimMatch{{Name: "scope", Values: []string{"orders:write"}}}}),
		allow("readers", config.AuthzRule{Consumers: []string{"*"}, Methods: []string{"GET", "HEAD"}}),
		allow("internal", config.AuthzRule{SourceCIDRs: []string{"10.0.0.0/8"}, Headers: []config.HeaderMatch{{Name: "X-Team", Regex: "[a-z]+"}}}),
	))
}

// simpleInputs exercise every rule of simplePolicy, and the default.
func simpleInputs() []*Input {
	hdr := httpmsg.Header{
		{Name: "Host", Value: "api.example.com"},
		{Name: "User-Agent", Value: "bench/1.0"},
		{Name: "Accept", Value: "application/json"},
		{Name: "X-Team", Value: "billing"},
	}
	alice := &proxy.Identity{Consumer: "alice", Groups: []string{"dev", "ops"},
		Claims: map[string]any{"sub": "alice", "scope": "openid profile orders:read orders:write"}}
	ip := netip.MustParseAddr("::ffff:10.1.2.3")
	return []*Input{
		{Method: "GET", Path: "/admin/users", Header: hdr, SourceIP: ip, Identity: alice},
		{Method: "PUT", Path: "/orders/42", Header: hdr, SourceIP: ip, Identity: alice},
		{Method: "PATCH", Path: "/orders/42", Header: hdr, SourceIP: ip, Identity: alice},
		{Method: "GET", Path: "/orders", Header: hdr, SourceIP: netip.MustParseAddr("192.0.2.1"), Identity: &proxy.Identity{Consumer: "bob"}},
		{Method: "POST", Path: "/orders", Header: hdr, SourceIP: ip},
		{Method: "POST", Path: "/orders", Header: hdr[:3], SourceIP: netip.MustParseAddr("192.0.2.1")},
	}
}

func BenchmarkDecide(b *testing.B) {
	b.Run("simple", func(b *testing.B) {
		pol, inputs := simplePolicy(b), simpleInputs()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			pol.Decide(inputs[i%len(inputs)])
		}
	})
	b.Run("cel", func(b *testing.B) {
		pol := mustCompile(b, rules(
			deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}}),
			allow("cel", config.AuthzRule{
				CEL: `request.method == "GET" && request.headers["x-team"] == "billing" && "ops" in consumer.groups`,
			}),
		))
		in := simpleInputs()[0]
		in = &Input{Method: "GET", Path: "/orders", Header: in.Header, SourceIP: in.SourceIP, Identity: in.Identity}
		if d := pol.Decide(in); !d.Allow || d.Rule != "cel" {
			b.Fatalf("Decide = %+v", d)
		}
		b.ReportAllocs()
		for b.Loop() {
			pol.Decide(in)
		}
	})
}
