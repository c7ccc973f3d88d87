package authz

import (
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

func TestPeerConditions(t *testing.T) {
	const orders = "spiffe://mesh.local/ns/shop/sa/orders"
	p, err := Compile(&config.AuthzPolicy{Default: config.AuthzDeny, Rules: []config.AuthzRule{
		{Name: "no-batch", Action: config.AuthzDeny, Identities: []string{"spiffe://mesh.local/ns/shop/sa/batch"}},
		{Name: "orders-get", Action: config.AuthzAllow, Identities: []string{orders}, Methods: []string{"GET"}},
		{Name: "ops", Action: config.AuthzAllow, Identities: []string{"spiffe://mesh.local/ns/ops/*"}},
		{Name: "payments-ns", Action: config.AuthzAllow, Namespaces: []string{"payments"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		desc, peer, method, rule string
		allow                    bool
	}{
		{"exact identity and method", orders, "GET", "orders-get", true},
		{"exact identity, other method", orders, "POST", DefaultRule, false},
		{"prefix", "spiffe://mesh.local/ns/ops/sa/debug", "DELETE", "ops", true},
		{"prefix needs a segment boundary", "spiffe://mesh.local/ns/opsx/sa/debug", "GET", DefaultRule, false},
		{"namespace", "spiffe://mesh.local/ns/payments/sa/ledger", "PUT", "payments-ns", true},
		{"other trust domain, same path", "spiffe://evil.example/ns/shop/sa/orders", "GET", DefaultRule, false},
		{"deny by identity", "spiffe://mesh.local/ns/shop/sa/batch", "GET", "no-batch", false},
		{"anonymous peer never matches", "", "GET", DefaultRule, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			d := p.Decide(&Input{Method: tc.method, Path: "/", PeerID: tc.peer})
			if d.Allow != tc.allow || d.Rule != tc.rule {
				t.Fatalf("got allow=%v rule=%q, want allow=%v rule=%q", d.Allow, d.Rule, tc.allow, tc.rule)
			}
		})
	}
}

func TestPeerConditionsRefused(t *testing.T) {
	for _, tc := range []struct {
		desc string
		rule config.AuthzRule
	}{
		{"not a SPIFFE ID", config.AuthzRule{Name: "r", Action: config.AuthzAllow, Identities: []string{"orders"}}},
		{"bad prefix", config.AuthzRule{Name: "r", Action: config.AuthzAllow, Identities: []string{"http://x/*"}}},
		{"empty namespace", config.AuthzRule{Name: "r", Action: config.AuthzAllow, Namespaces: []string{""}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if _, err := Compile(&config.AuthzPolicy{Default: config.AuthzDeny, Rules: []config.AuthzRule{tc.rule}}); err == nil {
				t.Fatal("compiled")
			}
		})
	}
}
