package authz

import (
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Helpers that keep the tables short.

func allow(name string, r config.AuthzRule) config.AuthzRule {
	r.Name, r.Action = name, config.AuthzAllow
	return r
}

func deny(name string, r config.AuthzRule) config.AuthzRule {
	r.Name, r.Action = name, config.AuthzDeny
	return r
}

func prefix(p string) config.PathMatch { return config.PathMatch{Prefix: p} }

func mustCompile(t testing.TB, p *config.AuthzPolicy) *Policy {
	t.Helper()
	pol, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return pol
}

func rules(rs ...config.AuthzRule) *config.AuthzPolicy { return &config.AuthzPolicy{Rules: rs} }

func req(method, path string) *Input {
	return &Input{Method: method, Path: path, Host: "api.example.com", SourceIP: netip.MustParseAddr("192.0.2.1")}
}

func as(in *Input, id *proxy.Identity) *Input {
	in.Identity = id
	return in
}

func withHeader(in *Input, kv ...string) *Input {
	for i := 0; i+1 < len(kv); i += 2 {
		in.Header = append(in.Header, httpmsg.Field{Name: kv[i], Value: kv[i+1]})
	}
	return in
}

func from(in *Input, ip string) *Input {
	in.SourceIP = netip.Addr{}
	if ip != "" {
		in.SourceIP = netip.MustParseAddr(ip)
	}
	return in
}

// ruleCase is one request checked against a one-rule allow policy (default deny): want is
// whether the rule matches.
type ruleCase struct {
	name string
	in   *Input
	want bool
}

func checkRule(t *testing.T, r config.AuthzRule, cases []ruleCase) {
	t.Helper()
	pol := mustCompile(t, rules(allow("r", r)))
	for _, c := range cases {
		got := pol.Decide(c.in)
		if got.Allow != c.want {
			t.Errorf("%s: Allow = %v, want %v (rule %q)", c.name, got.Allow, c.want, got.Rule)
		}
		wantRule := DefaultRule
		if c.want {
			wantRule = "r"
		}
		if got.Rule != wantRule {
			t.Errorf("%s: Rule = %q, want %q", c.name, got.Rule, wantRule)
		}
	}
}

func TestPrecedence(t *testing.T) {
	admin := config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}}
	gets := config.AuthzRule{Methods: []string{"GET"}}
	tests := []struct {
		name   string
		policy *config.AuthzPolicy
		in     *Input
		want   Decision
	}{
		{"deny wins over an earlier allow",
			rules(allow("gets", gets), deny("no-admin", admin)),
			req("GET", "/admin/users"), Decision{Allow: false, Rule: "no-admin"}},
		{"allow when no deny matches",
			rules(allow("gets", gets), deny("no-admin", admin)),
			req("GET", "/users"), Decision{Allow: true, Rule: "gets"}},
		{"first matching deny is named",
			rules(deny("d1", gets), deny("d2", admin), deny("d3", gets)),
			req("GET", "/admin"), Decision{Allow: false, Rule: "d1"}},
		{"first matching deny is named, skipping non-matching",
			rules(deny("d1", gets), deny("d2", admin)),
			req("POST", "/admin"), Decision{Allow: false, Rule: "d2"}},
		{"first matching allow is named",
			rules(allow("a1", admin), allow("a2", gets), allow("a3", gets)),
			req("GET", "/x"), Decision{Allow: true, Rule: "a2"}},
		{"unset default denies",
			rules(allow("gets", gets)),
			req("POST", "/x"), Decision{Allow: false, Rule: DefaultRule}},
		{"default deny",
			&config.AuthzPolicy{Rules: []config.AuthzRule{allow("gets", gets)}, Default: config.AuthzDeny},
			req("POST", "/x"), Decision{Allow: false, Rule: DefaultRule}},
		{"default allow",
			&config.AuthzPolicy{Rules: []config.AuthzRule{deny("no-admin", admin)}, Default: config.AuthzAllow},
			req("POST", "/x"), Decision{Allow: true, Rule: DefaultRule}},
		{"deny beats default allow",
			&config.AuthzPolicy{Rules: []config.AuthzRule{deny("no-admin", admin)}, Default: config.AuthzAllow},
			req("POST", "/admin"), Decision{Allow: false, Rule: "no-admin"}},
		{"no rules, default deny",
			&config.AuthzPolicy{},
			req("GET", "/"), Decision{Allow: false, Rule: DefaultRule}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustCompile(t, tt.policy).Decide(tt.in); got != tt.want {
				t.Errorf("Decide = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDefaultDeny(t *testing.T) {
	p := DefaultDeny()
	for _, in := range []*Input{
		req("GET", "/"),
		as(req("POST", "/admin"), &proxy.Identity{Consumer: "root", Groups: []string{"admin"}}),
		{},
	} {
		if got := p.Decide(in); got != (Decision{Rule: DefaultRule}) {
			t.Errorf("Decide(%+v) = %+v, want deny by default", in, got)
		}
	}
	var nilPolicy *Policy
	if got := nilPolicy.Decide(req("GET", "/")); got.Allow {
		t.Errorf("nil Policy allowed: %+v", got)
	}
}

func TestCompileErrors(t *testing.T) {
	ok := config.AuthzRule{Methods: []string{"GET"}}
	tests := []struct {
		name   string
		policy *config.AuthzPolicy
		want   []string // substrings of the error
	}{
		{"nil policy", nil, []string{"no policy"}},
		{"bad default", &config.AuthzPolicy{Default: "maybe"}, []string{`default "maybe"`}},
		{"bad action", rules(allow("ok", ok), config.AuthzRule{Name: "x", Action: "permit", Methods: []string{"GET"}}),
			[]string{`rule "x" (index 1)`, `action "permit"`}},
		{"no name", rules(config.AuthzRule{Action: "allow", Methods: []string{"GET"}}),
			[]string{`rule "" (index 0)`, "name is required"}},
		{"duplicate name", rules(allow("a", ok), deny("a", ok)),
			[]string{`rule "a" (index 1)`, "already used by rule 0"}},
		{"no conditions", rules(allow("open", config.AuthzRule{})),
			[]string{`rule "open" (index 0)`, "no conditions"}},
		{"empty lists are no conditions", rules(allow("open", config.AuthzRule{Methods: []string{}, Paths: []config.PathMatch{}})),
			[]string{"no conditions"}},
		{"empty consumer", rules(allow("c", config.AuthzRule{Consumers: []string{""}})),
			[]string{"empty consumer"}},
		{"empty path match", rules(deny("p", config.AuthzRule{Paths: []config.PathMatch{{}}})),
			[]string{`rule "p" (index 0)`, "path 0", "exactly one"}},
		{"two path fields", rules(deny("p", config.AuthzRule{Paths: []config.PathMatch{{Exact: "/a", Prefix: "/a"}}})),
			[]string{"exactly one"}},
		{"relative prefix", rules(deny("p", config.AuthzRule{Paths: []config.PathMatch{prefix("admin")}})),
			[]string{`prefix "admin"`}},
		{"bad path regex", rules(allow("ok", ok), deny("p", config.AuthzRule{Paths: []config.PathMatch{{Regex: "(["}}})),
			[]string{`rule "p" (index 1)`, "path 0", "regex"}},
		{"bad header regex", rules(deny("h", config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X", Regex: "a("}}})),
			[]string{`rule "h" (index 0)`, "header 0", "regex"}},
		{"header without name", rules(deny("h", config.AuthzRule{Headers: []config.HeaderMatch{{Value: "a"}}})),
			[]string{"header 0", "name is required"}},
		{"header two fields", rules(deny("h", config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X", Value: "a", Present: true}}})),
			[]string{"only one"}},
		{"bad CIDR", rules(deny("s", config.AuthzRule{SourceCIDRs: []string{"10.0.0.0/33"}})),
			[]string{`rule "s" (index 0)`, `source CIDR "10.0.0.0/33"`}},
		{"bad address", rules(deny("s", config.AuthzRule{SourceCIDRs: []string{"10.0.0.256"}})),
			[]string{`source CIDR "10.0.0.256"`}},
		{"zoned address", rules(deny("s", config.AuthzRule{SourceCIDRs: []string{"fe80::1%eth0"}})),
			[]string{"zone"}},
		{"claim without values", rules(allow("c", config.AuthzRule{Claims: []config.ClaimMatch{{Name: "roles"}}})),
			[]string{"claim 0", "values are required"}},
		{"scope value with space", rules(allow("c", config.AuthzRule{Claims: []config.ClaimMatch{{Name: "scope", Values: []string{"read write"}}}})),
			[]string{"claim 0", "single scope token"}},
		{"CEL syntax", rules(allow("cel", config.AuthzRule{CEL: `request.method ==`})),
			[]string{`rule "cel" (index 0)`, "cel:", "Syntax error"}},
		{"CEL unknown variable", rules(allow("cel", config.AuthzRule{CEL: `req.method == "GET"`})),
			[]string{`rule "cel" (index 0)`, "undeclared reference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.policy)
			if err == nil {
				t.Fatalf("Compile succeeded (%+v), want error", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestConcurrentDecide(t *testing.T) {
	pol := mustCompile(t, rules(
		deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin")}}),
		allow("cel", config.AuthzRule{CEL: `consumer.name == "alice" && request.headers["x-team"] == "a"`}),
		allow("gets", config.AuthzRule{Methods: []string{"GET"}}),
	))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := withHeader(as(req("POST", "/x"), &proxy.Identity{Consumer: "alice"}), "X-Team", "a")
				want := Decision{Allow: true, Rule: "cel"}
				switch (g + i) % 3 {
				case 1:
					in.Path, want = "/admin/x", Decision{Rule: "no-admin"}
				case 2:
					in.Identity, in.Method, want = nil, "GET", Decision{Allow: true, Rule: "gets"}
				}
				if got := pol.Decide(in); got != want {
					t.Errorf("Decide = %+v, want %+v", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
