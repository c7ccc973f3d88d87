package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateMesh checks the mesh objects: discovery, routes attached to a service, and
// identity rules that only a service's authz may hold.
func TestValidateMesh(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mesh.yaml")
	tests := []struct {
		desc string
		yaml string
		want []string
	}{
		{
			desc: "valid mesh objects",
			yaml: `version: 1
routes:
  - name: users-v2
    service: users
    match: [{headers: [{name: x-canary, value: "1"}]}]
    backends: [{service: users}]
services:
  - name: users
    discovery: {namespace: shop, port: http}
    authz:
      rules:
        - {name: orders, action: allow, identities: ["spiffe://mesh.local/ns/shop/sa/orders", "spiffe://mesh.local/ns/ops/*"]}
        - {name: same-ns, action: allow, namespaces: [shop], methods: [GET]}
`,
		},
		{
			desc: "bad mesh objects",
			yaml: `version: 1
listeners: [{name: web, address: "127.0.0.1:18080"}]
routes:
  - name: a
    service: users
    listeners: [web]
    backends: [{service: users}]
    authz:
      rules: [{name: r, action: allow, identities: ["spiffe://mesh.local/ns/a/sa/b"], namespaces: [a]}]
  - {name: b, service: static, backends: [{service: static}]}
  - {name: c, service: nope, backends: [{service: static}]}
services:
  - name: users
    discovery: {service: Users, namespace: "-x", port: "p_1"}
  - name: users2
    discovery: {service: Users, namespace: "-x"}
  - name: static
    endpoints: [{address: "127.0.0.1:1"}]
    authz:
      rules:
        - {name: bad-id, action: allow, identities: ["orders", "spiffe://mesh.local/ns/a/sa/*x"]}
        - {name: bad-ns, action: deny, namespaces: [Shop]}
`,
			want: []string{
				`DIR/mesh.yaml:5: route "a": service: a route attached to a service is not served on listeners; remove listeners`,
				`DIR/mesh.yaml:9: route "a": authz.rules[0].identities: only a service's authz (enforced by its sidecars) can match mesh identities`,
				`DIR/mesh.yaml:9: route "a": authz.rules[0].namespaces: only a service's authz (enforced by its sidecars) can match mesh namespaces`,
				`DIR/mesh.yaml:10: route "b": service: service "static" has no discovery, so no sidecar calls it as a mesh service`,
				`DIR/mesh.yaml:11: route "c": service: service "nope" is not defined`,
				`DIR/mesh.yaml:14: service "users": discovery.service: "Users" is not a valid mesh service name (lower-case letters, digits and '-', at most 63)`,
				`DIR/mesh.yaml:14: service "users": discovery.namespace: "-x" is not a valid namespace (lower-case letters, digits and '-', at most 63)`,
				`DIR/mesh.yaml:14: service "users": discovery.port: "p_1" is not a valid port name`,
				`DIR/mesh.yaml:16: service "users2": discovery.service: "Users" is not a valid mesh service name (lower-case letters, digits and '-', at most 63)`,
				`DIR/mesh.yaml:16: service "users2": discovery.namespace: "-x" is not a valid namespace (lower-case letters, digits and '-', at most 63)`,
				`DIR/mesh.yaml:16: service "users2": discovery: mesh service -x/Users is already discovered by services[0].discovery (line 14)`,
				`DIR/mesh.yaml:21: service "static": authz.rules[0].identities[0]: "orders" is not a SPIFFE ID ("spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE", or a prefix ending in "/*")`,
				`DIR/mesh.yaml:21: service "static": authz.rules[0].identities[1]: "spiffe://mesh.local/ns/a/sa/*x" is not a SPIFFE ID ("spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/SERVICE", or a prefix ending in "/*")`,
				`DIR/mesh.yaml:22: service "static": authz.rules[1].namespaces[0]: "Shop" is not a valid namespace`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := LoadBytes(file, []byte(tt.yaml))
			got := strings.ReplaceAll(strings.Join(errorLines(err), "\n"), dir, "DIR")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.ReplaceAll(got, "\n", "\n\t"), strings.ReplaceAll(want, "\n", "\n\t"))
			}
		})
	}
}
