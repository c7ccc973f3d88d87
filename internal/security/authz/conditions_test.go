package authz

import (
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
	"github.com/meshgate/meshgate/internal/proxy/router"
)

func TestConsumers(t *testing.T) {
	alice := &proxy.Identity{Authenticator: "keys", Consumer: "alice"}
	noConsumer := &proxy.Identity{Authenticator: "jwt", Claims: map[string]any{"sub": "x"}}
	checkRule(t, config.AuthzRule{Consumers: []string{"bob", "alice"}}, []ruleCase{
		{"listed consumer", as(req("GET", "/"), alice), true},
		{"other consumer", as(req("GET", "/"), &proxy.Identity{Consumer: "carol"}), false},
		{"case matters", as(req("GET", "/"), &proxy.Identity{Consumer: "Alice"}), false},
		{"anonymous", req("GET", "/"), false},
		{"authenticated without consumer", as(req("GET", "/"), noConsumer), false},
	})
	checkRule(t, config.AuthzRule{Consumers: []string{"*"}}, []ruleCase{
		{"any consumer", as(req("GET", "/"), alice), true},
		{"anonymous", req("GET", "/"), false},
		{"authenticated without consumer", as(req("GET", "/"), noConsumer), false},
	})
}

func TestGroups(t *testing.T) {
	checkRule(t, config.AuthzRule{Groups: []string{"ops", "admin"}}, []ruleCase{
		{"one group matches", as(req("GET", "/"), &proxy.Identity{Consumer: "a", Groups: []string{"dev", "admin"}}), true},
		{"no group matches", as(req("GET", "/"), &proxy.Identity{Consumer: "a", Groups: []string{"dev"}}), false},
		{"no groups", as(req("GET", "/"), &proxy.Identity{Consumer: "a"}), false},
		{"anonymous", req("GET", "/"), false},
	})
}

func TestClaims(t *testing.T) {
	id := func(claims map[string]any) *proxy.Identity {
		return &proxy.Identity{Authenticator: "jwt", Claims: claims}
	}
	roles := config.AuthzRule{Claims: []config.ClaimMatch{{Name: "roles", Values: []string{"admin", "ops"}}}}
	checkRule(t, roles, []ruleCase{
		{"string equal", as(req("GET", "/"), id(map[string]any{"roles": "ops"})), true},
		{"string not equal", as(req("GET", "/"), id(map[string]any{"roles": "dev"})), false},
		{"string not split", as(req("GET", "/"), id(map[string]any{"roles": "dev admin"})), false},
		{"[]any contains", as(req("GET", "/"), id(map[string]any{"roles": []any{"dev", 7.0, "admin"}})), true},
		{"[]any without", as(req("GET", "/"), id(map[string]any{"roles": []any{"dev", true}})), false},
		{"[]string contains", as(req("GET", "/"), id(map[string]any{"roles": []string{"ops"}})), true},
		{"[]string without", as(req("GET", "/"), id(map[string]any{"roles": []string{}})), false},
		{"number never matches", as(req("GET", "/"), id(map[string]any{"roles": 1.0})), false},
		{"object never matches", as(req("GET", "/"), id(map[string]any{"roles": map[string]any{"admin": true}})), false},
		{"claim missing", as(req("GET", "/"), id(map[string]any{"sub": "admin"})), false},
		{"no claims", as(req("GET", "/"), &proxy.Identity{Consumer: "admin"}), false},
		{"anonymous", req("GET", "/"), false},
	})
	scope := config.AuthzRule{Claims: []config.ClaimMatch{{Name: "scope", Values: []string{"orders:write"}}}}
	checkRule(t, scope, []ruleCase{
		{"single scope", as(req("GET", "/"), id(map[string]any{"scope": "orders:write"})), true},
		{"space-separated scopes", as(req("GET", "/"), id(map[string]any{"scope": "openid orders:read orders:write"})), true},
		{"extra spaces", as(req("GET", "/"), id(map[string]any{"scope": "  orders:write  "})), true},
		{"not among scopes", as(req("GET", "/"), id(map[string]any{"scope": "openid orders:read"})), false},
		{"token prefix only", as(req("GET", "/"), id(map[string]any{"scope": "orders:writer"})), false},
		{"tabs do not separate", as(req("GET", "/"), id(map[string]any{"scope": "a\torders:write"})), false},
		{"scope as list", as(req("GET", "/"), id(map[string]any{"scope": []any{"orders:write"}})), true},
		{"list elements are not split", as(req("GET", "/"), id(map[string]any{"scope": []any{"a orders:write"}})), false},
	})
	both := config.AuthzRule{Claims: []config.ClaimMatch{
		{Name: "iss", Values: []string{"https://idp.example.com"}},
		{Name: "scope", Values: []string{"read"}},
	}}
	checkRule(t, both, []ruleCase{
		{"all claims hold", as(req("GET", "/"), id(map[string]any{"iss": "https://idp.example.com", "scope": "read"})), true},
		{"one claim fails", as(req("GET", "/"), id(map[string]any{"iss": "https://evil.example.com", "scope": "read"})), false},
	})
}

func TestMethods(t *testing.T) {
	checkRule(t, config.AuthzRule{Methods: []string{"GET", "HEAD"}}, []ruleCase{
		{"GET", req("GET", "/"), true},
		{"HEAD", req("HEAD", "/"), true},
		{"POST", req("POST", "/"), false},
		{"lower case is another method", req("get", "/"), false},
		{"empty", req("", "/"), false},
	})
}

func TestPaths(t *testing.T) {
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{{Exact: "/login"}}}, []ruleCase{
		{"exact", req("GET", "/login"), true},
		{"exact trailing slash", req("GET", "/login/"), false},
		{"exact longer", req("GET", "/login/x"), false},
	})
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{prefix("/users/")}}, []ruleCase{
		{"trailing slash in prefix ignored", req("GET", "/users"), true},
		{"below", req("GET", "/users/7"), true},
		{"not a segment", req("GET", "/usersx"), false},
	})
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{prefix("/")}}, []ruleCase{
		{"root prefix", req("GET", "/"), true},
		{"root prefix matches all", req("GET", "/a/b"), true},
		{"asterisk form", req("OPTIONS", "*"), false},
	})
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{{Regex: "/orders/[0-9]+"}}}, []ruleCase{
		{"regex full match", req("GET", "/orders/42"), true},
		{"regex partial is no match", req("GET", "/orders/42/items"), false},
		{"regex prefix is no match", req("GET", "/v1/orders/42"), false},
	})
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{{Exact: "/a"}, prefix("/b"), {Regex: "/c.*"}}}, []ruleCase{
		{"any entry a", req("GET", "/a"), true},
		{"any entry b", req("GET", "/b/x"), true},
		{"any entry c", req("GET", "/cat"), true},
		{"none", req("GET", "/d"), false},
	})
}

// TestPathTricks checks a deny rule for prefix "/admin" against paths as the router sees them:
// after normalisation, and byte for byte (paths are case-sensitive).
func TestPathTricks(t *testing.T) {
	pol := mustCompile(t, &config.AuthzPolicy{
		Rules:   []config.AuthzRule{deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}})},
		Default: config.AuthzAllow,
	})
	tests := []struct {
		raw    string
		denied bool
	}{
		{"/admin", true},
		{"/admin/", true},
		{"/admin/x", true},
		{"/admin/x/../y", true},
		{"/x/../admin", true},
		{"/./admin", true},
		{"//admin", true},
		{"/admin//x", true},
		{"/%61dmin", true},
		{"/%61%64%6D%69%6E/x", true},
		{"/../admin", true},
		{"/admin/..", false}, // resolves to "/"
		{"/adminx", false},
		{"/administrator", false},
		{"/ADMIN", false}, // another path (RFC 3986 section 6.2.2.1), routed separately too
		{"/Admin/x", false},
		{"/admin;x", true}, // segment parameters are ignored: see TestPathParams
		{"/admin;x/y", true},
		{"/;x/admin", true},
		{"/admin%3Bx", false}, // an encoded ';' is data
		{"/api/admin", false},
		{"/x/..;/admin", true}, // refused by normalisation
		{"/x/%2e%2e;/admin", true},
	}
	for _, tt := range tests {
		path, err := pathnorm.Normalize(tt.raw, pathnorm.Options{})
		if err != nil {
			if !tt.denied {
				t.Fatalf("Normalize(%q): %v", tt.raw, err)
			}
			continue // refused before any rule is asked
		}
		got := pol.Decide(req("GET", path))
		if denied := !got.Allow; denied != tt.denied {
			t.Errorf("%q (normalised %q): denied = %v, want %v", tt.raw, path, denied, tt.denied)
		}
	}
}

// TestPrefixAgreesWithRouter checks that a prefix rule matches exactly the paths a route with
// the same prefix matches, for paths without segment parameters (which rules ignore and the
// router does not; see TestPathParams).
func TestPrefixAgreesWithRouter(t *testing.T) {
	prefixes := []string{"/", "/admin", "/admin/", "/admin//", "/a/b"}
	paths := []string{"/", "/admin", "/admin/", "/admin/x", "/adminx", "/ADMIN", "/Admin/x", "/a", "/a/b",
		"/a/b/c", "/a/bc", "/x/admin", ""}
	for _, pre := range prefixes {
		table, err := router.Compile([]config.Route{{Name: "r", Match: []config.RouteMatch{{Path: &config.PathMatch{Prefix: pre}}}}})
		if err != nil {
			t.Fatal(err)
		}
		pol := mustCompile(t, rules(allow("r", config.AuthzRule{Paths: []config.PathMatch{prefix(pre)}})))
		for _, p := range paths {
			_, routed := table.Match(&router.Input{Host: "h", Path: p, Method: "GET"})
			if got := pol.Decide(req("GET", p)).Allow; got != routed {
				t.Errorf("prefix %q, path %q: rule matches = %v, router matches = %v", pre, p, got, routed)
			}
		}
	}
}

// TestPathParams checks that exact and prefix conditions ignore segment parameters (";" up to
// the next "/") in deny and allow rules alike, and that regular expressions do not.
func TestPathParams(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/", "/"},
		{"/admin", "/admin"},
		{"/admin;x", "/admin"},
		{"/admin;x=1;y=2", "/admin"},
		{"/admin;x/y", "/admin/y"},
		{"/a;x/b;y/c", "/a/b/c"},
		{"/;x/admin", "/admin"},
		{"/;x;y/;z/admin", "/admin"},
		{"/a/;x", "/a/"},
		{"/;x", "/"},
		{"/;", "/"},
		{"/a;/", "/a/"},
		{"/a;x//b", "/a//b"},
		{"/admin%3Bx", "/admin%3Bx"},
		{"*", "*"},
		{"", ""},
	} {
		if got := pathnorm.WithoutParams(tt.in); got != tt.want {
			t.Errorf("pathnorm.WithoutParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	denyPol := mustCompile(t, &config.AuthzPolicy{
		Rules: []config.AuthzRule{
			deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}}),
			deny("no-secret", config.AuthzRule{Paths: []config.PathMatch{{Exact: "/secret"}}}),
		},
		Default: config.AuthzAllow,
	})
	for _, tt := range []struct {
		path   string
		denied bool
	}{
		{"/admin;x", true},
		{"/admin;x/y", true},
		{"/admin/y;x", true},
		{"/;x/admin", true},
		{"/;x/admin;y/z", true},
		{"/secret;x", true},
		{"/secret;", true},
		{"/secret;x/y", false},
		{"/adminx;y", false},
		{"/x;admin", false},
		{"/x/admin;y", false},
		{"/admin%3Bx", false},
	} {
		if got := denyPol.Decide(req("GET", tt.path)); got.Allow == tt.denied {
			t.Errorf("deny rules, %q: %+v, want denied = %v", tt.path, got, tt.denied)
		}
	}
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{prefix("/public"), {Exact: "/index"}}}, []ruleCase{
		{"prefix with parameters", req("GET", "/public;jsessionid=1"), true},
		{"below prefix with parameters", req("GET", "/public;jsessionid=1/a"), true},
		{"exact with parameters", req("GET", "/index;v=2"), true},
		{"parameters do not join segments", req("GET", "/pub;lic"), false},
		{"other path with parameters", req("GET", "/private;public"), false},
	})
	checkRule(t, config.AuthzRule{Paths: []config.PathMatch{{Regex: "/orders/[0-9]+"}}}, []ruleCase{
		{"regex sees parameters", req("GET", "/orders/42;x"), false},
		{"regex without parameters", req("GET", "/orders/42"), true},
	})
}

func TestHeaders(t *testing.T) {
	checkRule(t, config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X-Team", Value: "billing"}}}, []ruleCase{
		{"value", withHeader(req("GET", "/"), "X-Team", "billing"), true},
		{"name case-insensitive", withHeader(req("GET", "/"), "x-tEAm", "billing"), true},
		{"value case-sensitive", withHeader(req("GET", "/"), "X-Team", "Billing"), false},
		{"absent", req("GET", "/"), false},
		{"repeated, second matches", withHeader(req("GET", "/"), "X-Team", "ops", "X-Other", "billing", "x-team", "billing"), true},
		{"repeated, none matches", withHeader(req("GET", "/"), "X-Team", "ops", "X-Team", "dev"), false},
		{"comma list is one value", withHeader(req("GET", "/"), "X-Team", "ops, billing"), false},
	})
	checkRule(t, config.AuthzRule{Headers: []config.HeaderMatch{{Name: "Authorization", Regex: "Bearer [a-z]+"}}}, []ruleCase{
		{"regex full match", withHeader(req("GET", "/"), "authorization", "Bearer abc"), true},
		{"regex partial is no match", withHeader(req("GET", "/"), "authorization", "Bearer abc1"), false},
		{"regex needs start", withHeader(req("GET", "/"), "authorization", "xBearer abc"), false},
		{"regex any field", withHeader(req("GET", "/"), "authorization", "Basic x", "Authorization", "Bearer z"), true},
	})
	checkRule(t, config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X-Debug", Present: true}}}, []ruleCase{
		{"present", withHeader(req("GET", "/"), "x-debug", ""), true},
		{"absent", withHeader(req("GET", "/"), "x-debugger", "1"), false},
	})
	checkRule(t, config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X-Empty"}}}, []ruleCase{
		{"empty value", withHeader(req("GET", "/"), "X-Empty", ""), true},
		{"non-empty value", withHeader(req("GET", "/"), "X-Empty", "1"), false},
		{"absent", req("GET", "/"), false},
	})
	checkRule(t, config.AuthzRule{Headers: []config.HeaderMatch{{Name: "A", Value: "1"}, {Name: "B", Present: true}}}, []ruleCase{
		{"all hold", withHeader(req("GET", "/"), "A", "1", "B", "x"), true},
		{"one fails", withHeader(req("GET", "/"), "A", "1"), false},
	})
}

func TestSourceCIDRs(t *testing.T) {
	checkRule(t, config.AuthzRule{SourceCIDRs: []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:172.16.0.0/108"}}, []ruleCase{
		{"in IPv4 CIDR", from(req("GET", "/"), "10.1.2.3"), true},
		{"outside", from(req("GET", "/"), "11.0.0.1"), false},
		{"single address", from(req("GET", "/"), "192.0.2.7"), true},
		{"next to single address", from(req("GET", "/"), "192.0.2.8"), false},
		{"IPv4-mapped in IPv4 CIDR", from(req("GET", "/"), "::ffff:10.0.0.1"), true},
		{"IPv4-mapped single address", from(req("GET", "/"), "::ffff:192.0.2.7"), true},
		{"IPv4-mapped outside", from(req("GET", "/"), "::ffff:11.0.0.1"), false},
		{"IPv4 in mapped CIDR", from(req("GET", "/"), "172.16.5.5"), true},
		{"IPv6", from(req("GET", "/"), "2001:db8::1"), true},
		{"IPv6 with zone", from(req("GET", "/"), "2001:db8::1%eth0"), true},
		{"IPv6 outside", from(req("GET", "/"), "2001:db9::1"), false},
		{"IPv4-compatible is not mapped", from(req("GET", "/"), "::10.0.0.1"), false},
		{"invalid address", from(req("GET", "/"), ""), false},
	})
	checkRule(t, config.AuthzRule{SourceCIDRs: []string{"::ffff:10.0.0.1"}}, []ruleCase{
		{"mapped single address config", from(req("GET", "/"), "10.0.0.1"), true},
	})
	checkRule(t, config.AuthzRule{SourceCIDRs: []string{"10.0.0.1/8"}}, []ruleCase{
		{"unmasked CIDR", from(req("GET", "/"), "10.9.9.9"), true},
	})
}

func TestAllConditionsMustHold(t *testing.T) {
	r := config.AuthzRule{
		Consumers:   []string{"alice"},
		Methods:     []string{"DELETE"},
		Paths:       []config.PathMatch{prefix("/orders")},
		SourceCIDRs: []string{"10.0.0.0/8"},
		Headers:     []config.HeaderMatch{{Name: "X-Confirm", Value: "yes"}},
	}
	ok := func() *Input {
		return withHeader(from(as(req("DELETE", "/orders/1"), &proxy.Identity{Consumer: "alice"}), "10.0.0.1"), "X-Confirm", "yes")
	}
	wrong := func(f func(*Input)) *Input { in := ok(); f(in); return in }
	checkRule(t, r, []ruleCase{
		{"all", ok(), true},
		{"consumer", wrong(func(in *Input) { in.Identity.Consumer = "bob" }), false},
		{"method", wrong(func(in *Input) { in.Method = "GET" }), false},
		{"path", wrong(func(in *Input) { in.Path = "/users" }), false},
		{"source", wrong(func(in *Input) { from(in, "11.0.0.1") }), false},
		{"header", wrong(func(in *Input) { in.Header[0].Value = "no" }), false},
	})
}

func TestDecideAllocs(t *testing.T) {
	pol := simplePolicy(t)
	inputs := simpleInputs()
	for _, in := range inputs {
		if n := testing.AllocsPerRun(100, func() { pol.Decide(in) }); n != 0 {
			t.Errorf("Decide(%s %s) allocates %v times, want 0", in.Method, in.Path, n)
		}
	}
}
