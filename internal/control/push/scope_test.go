package push

import (
	"maps"
	"slices"
	"testing"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

func TestScope(t *testing.T) {
	ix, errs := buildIndex(mkState(t, 1, mustConfig(t, meshYAML), users(1)), nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		desc string
		node *controlv1.Node
		want []string
	}{
		{"gateway: listeners, edge routes, their services (backends and mirror), authn, consumers, plans",
			gatewayNode("gw"), gatewayKeys},
		{"a gateway's name does not change its scope",
			&controlv1.Node{Id: "gw", Role: RoleGateway, Service: "edge", Namespace: "x"}, gatewayKeys},
		{"sidecar without calls: its own service, every mesh service, every attached route and its targets",
			&controlv1.Node{Id: "s", Role: RoleSidecar, Service: "users", Namespace: "shop"},
			[]string{"bundle/trust", "route/orders-split", "route/users-canary", "service/orders", "service/users", "service/users-v2"}},
		{"sidecar calling users: its own service, users, the route attached to users and its backend",
			&controlv1.Node{Id: "s", Role: RoleSidecar, Service: "orders", Namespace: "shop", Calls: []string{"users", "users"}},
			[]string{"bundle/trust", "route/users-canary", "service/orders", "service/users", "service/users-v2"}},
		{"sidecar calling a service without discovery",
			&controlv1.Node{Id: "s", Role: RoleSidecar, Service: "billing", Namespace: "shop", Calls: []string{"shadow", "missing"}},
			[]string{"bundle/trust", "service/shadow"}},
		{"sidecar of a service in another namespace gets no inbound service",
			&controlv1.Node{Id: "s", Role: RoleSidecar, Service: "users", Namespace: "other", Calls: []string{"orders"}},
			[]string{"bundle/trust", "route/orders-split", "service/orders"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			sc, err := scopeOf(tc.node)
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Sorted(maps.Keys(sc.resources(ix)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("scope %v\nwant     %v", got, tc.want)
			}
		})
	}
}

func TestScopeKey(t *testing.T) {
	node := func(role, svc, ns string, calls ...string) *controlv1.Node {
		return &controlv1.Node{Id: "n", Role: role, Service: svc, Namespace: ns, Calls: calls}
	}
	tests := []struct {
		desc string
		a, b *controlv1.Node
		same bool
	}{
		{"gateways share one scope", node(RoleGateway, "a", "x"), node(RoleGateway, "b", "y"), true},
		{"calls order and duplicates do not matter", node(RoleSidecar, "a", "x", "p", "q"), node(RoleSidecar, "a", "x", "q", "p", "p"), true},
		{"an empty namespace is default", node(RoleSidecar, "a", ""), node(RoleSidecar, "a", "default"), true},
		{"different calls", node(RoleSidecar, "a", "x", "p"), node(RoleSidecar, "a", "x"), false},
		{"different service", node(RoleSidecar, "a", "x"), node(RoleSidecar, "b", "x"), false},
		{"a name cannot forge another scope", node(RoleSidecar, "a b", "x", "c"), node(RoleSidecar, "a", "x", "b c"), false},
		{"nor can a call", node(RoleSidecar, "a\"", "x", "c"), node(RoleSidecar, "a", "x", "\" c"), false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			a, err := scopeOf(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := scopeOf(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (a.key() == b.key()) != tc.same {
				t.Errorf("keys %q and %q: same = %v, want %v", a.key(), b.key(), a.key() == b.key(), tc.same)
			}
		})
	}
	if _, err := scopeOf(node("ingress", "a", "x")); err == nil {
		t.Error("an unknown role has a scope")
	}
}
