package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

func TestCEL(t *testing.T) {
	alice := &proxy.Identity{
		Authenticator: "jwt",
		Consumer:      "alice",
		Groups:        []string{"ops"},
		Claims:        map[string]any{"sub": "alice", "roles": []any{"admin-eu", "dev"}, "admin": true, "level": 3.0},
	}
	full := func() *Input {
		return withHeader(from(as(req("POST", "/orders/7"), alice), "::ffff:10.1.2.3"),
			"X-Team", "billing", "Accept", "a", "accept", "b")
	}
	tests := []struct {
		expr string
		in   *Input
		want bool
	}{
		{`true`, req("GET", "/"), true},
		{`false`, req("GET", "/"), false},
		{`request.method == "POST" && request.path.startsWith("/orders/")`, full(), true},
		{`request.host == "api.example.com"`, full(), true},
		{`request.headers["x-team"] == "billing"`, full(), true},
		{`request.headers["accept"] == "a,b"`, full(), true},
		{`"x-team" in request.headers && !("X-Team" in request.headers)`, full(), true},
		{`source.ip == "10.1.2.3"`, full(), true},
		{`consumer.name == "alice" && "ops" in consumer.groups`, full(), true},
		{`jwt.claims.sub == "alice" && jwt.claims.admin == true && jwt.claims.level > 2.0`, full(), true},
		{`jwt.claims.roles.exists(r, r.startsWith("admin-"))`, full(), true},
		{`has(jwt.claims.sub)`, full(), true},
		{`request.path.matches("^/orders/[0-9]+$")`, full(), true},
		{`consumer.name == "" && size(consumer.groups) == 0 && size(jwt.claims) == 0`, req("GET", "/"), true},
		{`source.ip == ""`, from(req("GET", "/"), ""), true},
		{`size(request.headers) == 0`, req("GET", "/"), true},
		{`!has(jwt.claims.sub)`, req("GET", "/"), true},
		{`"x-\u212aey" in request.headers && !("x-key" in request.headers)`, withHeader(req("GET", "/"), "X-\u212aEY", "1"), true},
	}
	for _, tt := range tests {
		pol := mustCompile(t, rules(allow("cel", config.AuthzRule{CEL: tt.expr})))
		if got := pol.Decide(tt.in).Allow; got != tt.want {
			t.Errorf("%s: Allow = %v, want %v", tt.expr, got, tt.want)
		}
	}
}

// TestCELErrorsFailClosed checks that an expression failing at run time does not match an allow
// rule and does match a deny rule.
func TestCELErrorsFailClosed(t *testing.T) {
	for _, expr := range []string{
		`request.headers["x-absent"] == "1"`, // no such key
		`jwt.claims.sub == "alice"`,          // no claims: no such key
		`jwt.claims.level + 1 > 0`,           // double + int: no such overload at run time
		`consumer.groups[5] == "x"`,          // index out of range
		costly,                               // cost limit
	} {
		in := req("GET", "/")
		allowPol := mustCompile(t, rules(allow("a", config.AuthzRule{CEL: expr})))
		if got := allowPol.Decide(in); got != (Decision{Rule: DefaultRule}) {
			t.Errorf("allow %s: Decide = %+v, want default deny", expr, got)
		}
		denyPol := mustCompile(t, &config.AuthzPolicy{
			Rules:   []config.AuthzRule{deny("d", config.AuthzRule{CEL: expr})},
			Default: config.AuthzAllow,
		})
		if got := denyPol.Decide(in); got != (Decision{Rule: "d"}) {
			t.Errorf("deny %s: Decide = %+v, want denied by d", expr, got)
		}
	}
}

// costly is an expression whose evaluation costs far more than MaxCELCost (a million
// iterations); it depends on the request so that it cannot be folded at compile time.
var costly = func() string {
	var l []string
	for i := range 100 {
		l = append(l, fmt.Sprint(i))
	}
	list := "[" + strings.Join(l, ",") + "]"
	return fmt.Sprintf(`%[1]s.all(a, %[1]s.all(b, %[1]s.all(c, request.method != "x")))`, list)
}()

func TestCELCostLimit(t *testing.T) {
	prg, err := compileCEL(costly)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = prg.Eval(&celVars{in: req("GET", "/")})
	if err == nil || !strings.Contains(err.Error(), "cost limit") {
		t.Fatalf("Eval error = %v, want cost limit exceeded", err)
	}
	// Large input is metered too: string work costs per byte.
	pol := mustCompile(t, rules(allow("a", config.AuthzRule{
		CEL: `request.headers["x"].contains("z") || request.headers["x"].contains("y") || request.headers["x"].contains("w")`,
	})))
	if got := pol.Decide(withHeader(req("GET", "/"), "X", strings.Repeat("a", 200_000)+"w")); got.Allow {
		t.Errorf("expression over the cost limit allowed: %+v", got)
	}
	if got := pol.Decide(withHeader(req("GET", "/"), "X", "aw")); !got.Allow {
		t.Errorf("cheap evaluation denied: %+v", got)
	}
}

func TestCELCompileErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{`request.method`, "type dyn, want bool"},
		{`1 + 2`, "type int, want bool"},
		{`jwt.claims.admin`, "want bool"},
		{`request.path.size()`, "want bool"},
		{`consumer.groups.map(g, g == "a").size() > 0`, "undeclared reference to 'map'"},
		{`consumer.groups.filter(g, g == "a").size() > 0`, "undeclared reference to 'filter'"},
		{`request.path.matches("(")`, "cel:"},
		{`(`, "Syntax error"},
		{strings.Repeat("true && ", 1000) + "true", "size exceeds limit"},
	}
	for _, tt := range tests {
		_, err := Compile(rules(allow("x", config.AuthzRule{Methods: []string{"GET"}}), allow("bad", config.AuthzRule{CEL: tt.expr})))
		if err == nil {
			t.Errorf("%.40s: compiled, want error", tt.expr)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `rule "bad" (index 1)`) || !strings.Contains(msg, tt.want) {
			t.Errorf("%.40s: error %q, want rule name and %q", tt.expr, msg, tt.want)
		}
	}
}

// TestCELVarsShared checks that the variables are built once per decision, however many CEL
// rules run, and only when one does.
func TestCELVarsShared(t *testing.T) {
	in := withHeader(req("GET", "/"), "X-A", "1")
	v := &celVars{in: in}
	r1, _ := v.ResolveName("request")
	r2, _ := v.ResolveName("request")
	if fmt.Sprintf("%p", r1) != fmt.Sprintf("%p", r2) {
		t.Error("request built twice")
	}
	if _, ok := v.ResolveName("other"); ok {
		t.Error("unknown variable resolved")
	}
	if v.Parent() != nil {
		t.Error("Parent is not nil")
	}
}
