package router

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Helpers that keep the tables short.

func route(hosts []string, ms ...config.RouteMatch) config.Route {
	return config.Route{Hosts: hosts, Match: ms}
}

func exact(p string) config.RouteMatch  { return config.RouteMatch{Path: &config.PathMatch{Exact: p}} }
func prefix(p string) config.RouteMatch { return config.RouteMatch{Path: &config.PathMatch{Prefix: p}} }
func regex(p string) config.RouteMatch  { return config.RouteMatch{Path: &config.PathMatch{Regex: p}} }

func withMethod(m config.RouteMatch, method string) config.RouteMatch {
	m.Method = method
	return m
}

func withHeaders(m config.RouteMatch, hs ...config.HeaderMatch) config.RouteMatch {
	m.Headers = hs
	return m
}

func withQuery(m config.RouteMatch, qs ...config.QueryMatch) config.RouteMatch {
	m.Query = qs
	return m
}

func hdr(name, value string) config.HeaderMatch { return config.HeaderMatch{Name: name, Value: value} }
func hdrRe(name, re string) config.HeaderMatch  { return config.HeaderMatch{Name: name, Regex: re} }
func hdrPresent(name string) config.HeaderMatch { return config.HeaderMatch{Name: name, Present: true} }
func qry(name, value string) config.QueryMatch  { return config.QueryMatch{Name: name, Value: value} }
func qryRe(name, re string) config.QueryMatch   { return config.QueryMatch{Name: name, Regex: re} }
func qryPresent(name string) config.QueryMatch  { return config.QueryMatch{Name: name, Present: true} }
func hosts(hs ...string) []string               { return hs }
func req(host, path string) Input               { return Input{Host: host, Path: path, Method: "GET"} }
func reqM(host, path, method string) Input      { return Input{Host: host, Path: path, Method: method} }
func reqQ(host, path, query string) Input {
	return Input{Host: host, Path: path, Method: "GET", Query: query}
}
func hit(route, match int, prefix string) Result {
	return Result{Route: route, Match: match, Prefix: prefix}
}

func reqH(host, path string, kv ...string) Input {
	in := req(host, path)
	for i := 0; i+1 < len(kv); i += 2 {
		in.Header.Add(kv[i], kv[i+1])
	}
	return in
}

var miss = Result{Route: -1}

func TestMatch(t *testing.T) {
	tests := []struct {
		desc   string
		routes []config.Route
		in     Input
		want   Result // miss for no match
	}{
		// Path kinds.
		{
			desc:   "exact beats prefix, prefix first",
			routes: []config.Route{route(nil, prefix("/login")), route(nil, exact("/login"))},
			in:     req("h", "/login"),
			want:   hit(1, 0, ""),
		},
		{
			desc:   "exact beats prefix, exact first",
			routes: []config.Route{route(nil, exact("/login")), route(nil, prefix("/login"))},
			in:     req("h", "/login"),
			want:   hit(0, 0, ""),
		},
		{
			desc:   "exact needs the whole path",
			routes: []config.Route{route(nil, exact("/login")), route(nil, prefix("/login"))},
			in:     req("h", "/login/"),
			want:   hit(1, 0, "/login"),
		},
		{
			desc:   "longest prefix wins",
			routes: []config.Route{route(nil, prefix("/")), route(nil, prefix("/api/v1")), route(nil, prefix("/api"))},
			in:     req("h", "/api/v1/users"),
			want:   hit(1, 0, "/api/v1"),
		},
		{
			desc:   "shorter prefix when the longer does not match",
			routes: []config.Route{route(nil, prefix("/")), route(nil, prefix("/api/v1")), route(nil, prefix("/api"))},
			in:     req("h", "/api/v2"),
			want:   hit(2, 0, "/api"),
		},
		{
			desc:   "root prefix catches the rest",
			routes: []config.Route{route(nil, prefix("/")), route(nil, prefix("/api/v1")), route(nil, prefix("/api"))},
			in:     req("h", "/other"),
			want:   hit(0, 0, "/"),
		},
		{
			desc:   "regex between exact and prefix: exact",
			routes: []config.Route{route(nil, prefix("/users")), route(nil, regex("/users/[0-9]+")), route(nil, exact("/users/7"))},
			in:     req("h", "/users/7"),
			want:   hit(2, 0, ""),
		},
		{
			desc:   "regex between exact and prefix: regex",
			routes: []config.Route{route(nil, prefix("/users")), route(nil, regex("/users/[0-9]+")), route(nil, exact("/users/7"))},
			in:     req("h", "/users/8"),
			want:   hit(1, 0, ""),
		},
		{
			desc:   "regex between exact and prefix: prefix",
			routes: []config.Route{route(nil, prefix("/users")), route(nil, regex("/users/[0-9]+")), route(nil, exact("/users/7"))},
			in:     req("h", "/users/x"),
			want:   hit(0, 0, "/users"),
		},
		{
			desc:   "regex beats a longer prefix",
			routes: []config.Route{route(nil, prefix("/users/admin/settings")), route(nil, regex("/users/.*"))},
			in:     req("h", "/users/admin/settings"),
			want:   hit(1, 0, ""),
		},
		{
			desc:   "exact beats a longer regex",
			routes: []config.Route{route(nil, regex("/users/[a-z0-9]+(/.*)?")), route(nil, exact("/users/7"))},
			in:     req("h", "/users/7"),
			want:   hit(1, 0, ""),
		},
		{
			desc:   "longer regex wins",
			routes: []config.Route{route(nil, regex("/a.*")), route(nil, regex("/a/[a-z]+"))},
			in:     req("h", "/a/b"),
			want:   hit(1, 0, ""),
		},
		{
			desc:   "regex is anchored at the start",
			routes: []config.Route{route(nil, regex("/b")), route(nil, prefix("/"))},
			in:     req("h", "/a/b"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "regex is anchored at the end",
			routes: []config.Route{route(nil, regex("/a|/b")), route(nil, prefix("/"))},
			in:     req("h", "/a/c"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "regex alternation is grouped",
			routes: []config.Route{route(nil, regex("/a|/b")), route(nil, prefix("/"))},
			in:     req("h", "/b"),
			want:   hit(0, 0, ""),
		},

		// Prefix segment boundaries.
		{
			desc:   "prefix is not a string prefix",
			routes: []config.Route{route(nil, prefix("/users"))},
			in:     req("h", "/usersx"),
			want:   miss,
		},
		{
			desc:   "prefix matches itself",
			routes: []config.Route{route(nil, prefix("/users"))},
			in:     req("h", "/users"),
			want:   hit(0, 0, "/users"),
		},
		{
			desc:   "prefix matches with trailing slash",
			routes: []config.Route{route(nil, prefix("/users"))},
			in:     req("h", "/users/"),
			want:   hit(0, 0, "/users"),
		},
		{
			desc:   "prefix matches below",
			routes: []config.Route{route(nil, prefix("/users"))},
			in:     req("h", "/users/7"),
			want:   hit(0, 0, "/users"),
		},
		{
			desc:   "trailing slash in prefix ignored",
			routes: []config.Route{route(nil, prefix("/users/"))},
			in:     req("h", "/users"),
			want:   hit(0, 0, "/users"),
		},
		{
			desc:   "trailing slash in prefix still on boundary",
			routes: []config.Route{route(nil, prefix("/users/"))},
			in:     req("h", "/usersx"),
			want:   miss,
		},
		{
			desc:   "prefix with trailing slash counts its characters",
			routes: []config.Route{route(nil, prefix("/users")), route(nil, prefix("/users/"))},
			in:     req("h", "/users/7"),
			want:   hit(1, 0, "/users"),
		},
		{
			desc:   "match without path is prefix root",
			routes: []config.Route{route(nil, config.RouteMatch{Method: "GET"})},
			in:     req("h", "/anything"),
			want:   hit(0, 0, "/"),
		},
		{
			desc:   "route without matches serves every path",
			routes: []config.Route{route(hosts("a.example"))},
			in:     req("a.example", "/x/y"),
			want:   hit(0, 0, "/"),
		},

		// Method, headers, query.
		{
			desc:   "method beats no method",
			routes: []config.Route{route(nil, prefix("/api")), route(nil, withMethod(prefix("/api"), "GET"))},
			in:     reqM("h", "/api/x", "GET"),
			want:   hit(1, 0, "/api"),
		},
		{
			desc:   "method mismatch falls through",
			routes: []config.Route{route(nil, prefix("/api")), route(nil, withMethod(prefix("/api"), "GET"))},
			in:     reqM("h", "/api/x", "POST"),
			want:   hit(0, 0, "/api"),
		},
		{
			desc:   "method is case-sensitive",
			routes: []config.Route{route(nil, withMethod(prefix("/"), "GET"))},
			in:     reqM("h", "/", "get"),
			want:   miss,
		},
		{
			desc:   "longer prefix beats method",
			routes: []config.Route{route(nil, withMethod(prefix("/api"), "GET")), route(nil, prefix("/api/v1"))},
			in:     reqM("h", "/api/v1/x", "GET"),
			want:   hit(1, 0, "/api/v1"),
		},
		{
			desc: "more headers win",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdr("x-a", "1"))),
				route(nil, withHeaders(prefix("/"), hdr("x-a", "1"), hdrPresent("x-b"))),
			},
			in:   reqH("h", "/", "X-A", "1", "X-B", ""),
			want: hit(1, 0, "/"),
		},
		{
			desc: "fewer headers when the more do not match",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdr("x-a", "1"))),
				route(nil, withHeaders(prefix("/"), hdr("x-a", "1"), hdrPresent("x-b"))),
			},
			in:   reqH("h", "/", "X-A", "1"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "method beats more headers",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdr("x-a", "1"), hdr("x-b", "2"))),
				route(nil, withMethod(prefix("/"), "GET")),
			},
			in:   reqH("h", "/", "x-a", "1", "x-b", "2"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "header name is case-insensitive, value is not",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdr("X-Env", "Canary"))),
				route(nil, prefix("/")),
			},
			in:   reqH("h", "/", "x-env", "canary"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "header first occurrence wins",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdr("x-env", "canary"))),
				route(nil, prefix("/")),
			},
			in:   reqH("h", "/", "X-Env", "prod", "X-Env", "canary"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "header regex is anchored",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdrRe("x-v", "v[0-9]"))),
				route(nil, prefix("/")),
			},
			in:   reqH("h", "/", "x-v", "xv1y"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "header regex matches",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdrRe("x-v", "v[0-9]"))),
				route(nil, prefix("/")),
			},
			in:   reqH("h", "/", "x-v", "v1"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "header present with empty value",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdrPresent("x-debug"))),
				route(nil, prefix("/")),
			},
			in:   reqH("h", "/", "X-Debug", ""),
			want: hit(0, 0, "/"),
		},
		{
			desc: "more query matches win",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("a", "1"))),
				route(nil, withQuery(prefix("/"), qry("a", "1"), qryPresent("b"))),
			},
			in:   reqQ("h", "/", "a=1&b"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "header beats query",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("a", "1"), qry("b", "2"))),
				route(nil, withHeaders(prefix("/"), hdrPresent("x"))),
			},
			in:   Input{Host: "h", Path: "/", Query: "a=1&b=2", Header: httpmsg.Header{{Name: "X", Value: "y"}}},
			want: hit(1, 0, "/"),
		},
		{
			desc: "query decoding",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("a b", "c d/é"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "x=1&a%20b=c+d%2F%C3%A9"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "query first occurrence wins",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("v", "2"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "v=1&v=2"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "query first occurrence after decoding",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("v", "2"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "%76=2&v=1"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "query pair with bad escape is skipped",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qry("v", "2"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "v=%zz&v=2"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "query regex is anchored",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qryRe("id", "[0-9]+"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "id=12a"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "query present without value",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qryPresent("debug"))),
				route(nil, prefix("/")),
			},
			in:   reqQ("h", "/", "x&debug&y=1"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "query absent",
			routes: []config.Route{
				route(nil, withQuery(prefix("/"), qryPresent("debug"))),
			},
			in:   reqQ("h", "/", "debugx=1&xdebug"),
			want: miss,
		},

		// Hosts.
		{
			desc: "exact host beats wildcard beats none: exact",
			routes: []config.Route{
				route(nil, exact("/x")),
				route(hosts("*.example.com"), prefix("/")),
				route(hosts("api.example.com"), prefix("/")),
			},
			in:   req("api.example.com", "/x"),
			want: hit(2, 0, "/"),
		},
		{
			desc: "exact host beats wildcard beats none: wildcard",
			routes: []config.Route{
				route(nil, exact("/x")),
				route(hosts("*.example.com"), prefix("/")),
				route(hosts("api.example.com"), prefix("/")),
			},
			in:   req("www.example.com", "/x"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "exact host beats wildcard beats none: none",
			routes: []config.Route{
				route(nil, exact("/x")),
				route(hosts("*.example.com"), prefix("/")),
				route(hosts("api.example.com"), prefix("/")),
			},
			in:   req("other.org", "/x"),
			want: hit(0, 0, ""),
		},
		{
			desc: "wildcard does not match the bare suffix",
			routes: []config.Route{
				route(nil, exact("/x")),
				route(hosts("*.example.com"), prefix("/")),
			},
			in:   req("example.com", "/x"),
			want: hit(0, 0, ""),
		},
		{
			desc: "wildcard matches several labels",
			routes: []config.Route{
				route(nil, exact("/x")),
				route(hosts("*.example.com"), prefix("/")),
			},
			in:   req("a.b.c.example.com", "/x"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "falls back to a less specific host when the path does not match",
			routes: []config.Route{
				route(nil, prefix("/")),
				route(hosts("*.example.com"), prefix("/api")),
				route(hosts("api.example.com"), exact("/only")),
			},
			in:   req("api.example.com", "/api/x"),
			want: hit(1, 0, "/api"),
		},
		{
			desc: "falls back to host-less",
			routes: []config.Route{
				route(nil, prefix("/")),
				route(hosts("*.example.com"), prefix("/api")),
				route(hosts("api.example.com"), exact("/only")),
			},
			in:   req("api.example.com", "/web"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "longer wildcard beats shorter",
			routes: []config.Route{
				route(hosts("*.example.com"), exact("/x")),
				route(hosts("*.b.example.com"), prefix("/")),
			},
			in:   req("a.b.example.com", "/x"),
			want: hit(1, 0, "/"),
		},
		{
			desc: "shorter wildcard for its own hosts",
			routes: []config.Route{
				route(hosts("*.example.com"), exact("/x")),
				route(hosts("*.b.example.com"), prefix("/")),
			},
			in:   req("a.c.example.com", "/x"),
			want: hit(0, 0, ""),
		},
		{
			desc: "shorter wildcard covers the longer one's bare suffix",
			routes: []config.Route{
				route(hosts("*.example.com"), exact("/x")),
				route(hosts("*.b.example.com"), prefix("/")),
			},
			in:   req("b.example.com", "/x"),
			want: hit(0, 0, ""),
		},
		{
			desc: "longer wildcard falls back to shorter",
			routes: []config.Route{
				route(hosts("*.example.com"), exact("/x")),
				route(hosts("*.b.example.com"), prefix("/y")),
			},
			in:   req("a.b.example.com", "/x"),
			want: hit(0, 0, ""),
		},
		{
			desc: "wildcards merged into an exact host's bucket",
			routes: []config.Route{
				route(hosts("*.example.com"), exact("/x")),
				route(hosts("*.b.example.com"), exact("/x")),
				route(hosts("a.b.example.com"), exact("/y")),
				route(nil, exact("/x")),
			},
			in:   req("a.b.example.com", "/x"),
			want: hit(1, 0, ""),
		},
		{
			desc: "a route's best host counts",
			routes: []config.Route{
				route(hosts("api.example.com"), prefix("/")),
				route(hosts("*.example.com", "api.example.com"), prefix("/")),
			},
			in:   req("api.example.com", "/"),
			want: hit(0, 0, "/"),
		},
		{
			desc: "a route's best host counts over file order",
			routes: []config.Route{
				route(hosts("*.example.com"), prefix("/")),
				route(hosts("*.example.com", "api.example.com"), prefix("/")),
			},
			in:   req("api.example.com", "/"),
			want: hit(1, 0, "/"),
		},
		{
			desc:   "host case, port and trailing dot ignored",
			routes: []config.Route{route(nil, prefix("/")), route(hosts("API.Example.com."), prefix("/"))},
			in:     req("api.EXAMPLE.com.:8443", "/"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "wildcard host case ignored",
			routes: []config.Route{route(nil, prefix("/")), route(hosts("*.Example.COM"), prefix("/"))},
			in:     req("WWW.EXAMPLE.COM", "/"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "ipv6 literal with port",
			routes: []config.Route{route(nil, prefix("/")), route(hosts("[::1]"), prefix("/"))},
			in:     req("[::1]:8080", "/"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "ipv6 literal without port",
			routes: []config.Route{route(nil, prefix("/")), route(hosts("::1"), prefix("/"))},
			in:     req("[::1]", "/"),
			want:   hit(1, 0, "/"),
		},
		{
			desc:   "star host serves every host",
			routes: []config.Route{route(hosts("*"), prefix("/"))},
			in:     req("anything.example", "/"),
			want:   hit(0, 0, "/"),
		},
		{
			desc:   "empty host only reaches host-less routes",
			routes: []config.Route{route(hosts("a.example"), prefix("/")), route(nil, prefix("/z"))},
			in:     req("", "/x"),
			want:   miss,
		},
		{
			desc:   "unknown host with only host-specific routes",
			routes: []config.Route{route(hosts("a.example"), prefix("/")), route(hosts("*.b.example"), prefix("/"))},
			in:     req("c.example", "/"),
			want:   miss,
		},

		// File order.
		{
			desc:   "file order on full ties",
			routes: []config.Route{route(nil, prefix("/a")), route(nil, prefix("/a"))},
			in:     req("h", "/a"),
			want:   hit(0, 0, "/a"),
		},
		{
			desc:   "file order within a route",
			routes: []config.Route{route(nil, prefix("/b")), route(nil, prefix("/a"), prefix("/a"))},
			in:     req("h", "/a"),
			want:   hit(1, 0, "/a"),
		},
		{
			desc:   "best match of a route wins across routes",
			routes: []config.Route{route(nil, prefix("/b")), route(nil, prefix("/a"), exact("/b"))},
			in:     req("h", "/b"),
			want:   hit(1, 1, ""),
		},
		{
			desc: "file order on equal specificity of different conditions",
			routes: []config.Route{
				route(nil, withHeaders(prefix("/"), hdrPresent("x-a"))),
				route(nil, withHeaders(prefix("/"), hdrPresent("x-b"))),
			},
			in:   reqH("h", "/", "x-b", "1", "x-a", "1"),
			want: hit(0, 0, "/"),
		},

		// No match.
		{
			desc:   "no routes",
			routes: nil,
			in:     req("h", "/"),
			want:   miss,
		},
		{
			desc:   "no match",
			routes: []config.Route{route(nil, exact("/a"), prefix("/b"))},
			in:     req("h", "/c"),
			want:   miss,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tab, err := Compile(tc.routes)
			if err != nil {
				t.Fatal(err)
			}
			in := tc.in
			got, ok := tab.Match(&in)
			if !ok {
				got = miss
			}
			if got != tc.want {
				t.Fatalf("Match(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
			if want := refMatch(tc.routes, &in); want != got {
				t.Fatalf("reference gives %+v, Match %+v", want, got)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		desc    string
		routes  []config.Route
		wantErr string
	}{
		{"bad path regex", []config.Route{{Name: "r", Match: []config.RouteMatch{regex("/a(")}}}, `route "r" match 0: path regex`},
		{"bad header regex", []config.Route{{Name: "r", Match: []config.RouteMatch{prefix("/"), withHeaders(prefix("/"), hdrRe("x", "[z-a]"))}}}, `route "r" match 1: header "x" regex`},
		{"bad query regex", []config.Route{{Name: "r", Match: []config.RouteMatch{withQuery(prefix("/"), qryRe("q", "*"))}}}, `route "r" match 0: query "q" regex`},
		{"empty host", []config.Route{{Name: "r", Hosts: []string{""}}}, `route "r": empty host`},
		{"wildcard without suffix", []config.Route{{Name: "r", Hosts: []string{"*.."}}}, `route "r": wildcard host without a suffix`},
		{"good", []config.Route{{Name: "r", Hosts: []string{"a", "*."}, Match: []config.RouteMatch{regex("/a.*")}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			tab, err := Compile(tc.routes)
			if tc.wantErr == "" {
				if err != nil || tab == nil {
					t.Fatalf("Compile: %v", err)
				}
				return
			}
			if err == nil || tab != nil {
				t.Fatalf("Compile = %v, %v; want error containing %q", tab, err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "router: ") || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Compile error %q, want it to contain %q", err, tc.wantErr)
			}
			var re *syntax.Error
			if strings.Contains(tc.wantErr, "regex") && !errors.As(err, &re) {
				t.Fatalf("error %v does not wrap the regexp syntax error", err)
			}
		})
	}
}

func TestMatchAllocs(t *testing.T) {
	tab, err := Compile(benchRoutes())
	if err != nil {
		t.Fatal(err)
	}
	for _, bc := range benchInputs() {
		if n := testing.AllocsPerRun(100, func() { tab.Match(&bc.in) }); n != 0 {
			t.Errorf("Match(%+v): %v allocs, want 0", bc.in, n)
		}
	}
	long := Input{Host: "X" + strings.Repeat(".ABCDEFGHIJ", 20) + ".Example.COM:443", Path: "/svc7/x", Method: "GET"}
	if n := testing.AllocsPerRun(100, func() { tab.Match(&long) }); n != 0 {
		t.Errorf("long upper-case host: %v allocs, want 0", n)
	}
	// Query conditions that need no decoding do not allocate either.
	q := Input{Host: "api.example.com", Path: "/search", Method: "GET", Query: "a=1&q=term&z"}
	if n := testing.AllocsPerRun(100, func() { tab.Match(&q) }); n != 0 {
		t.Errorf("plain query: %v allocs, want 0", n)
	}
}

// refMatch is a brute-force reference: evaluate every (route, match) pair and keep the best by
// the documented precedence.
func refMatch(routes []config.Route, in *Input) Result {
	host := asciiLower(in.Host)
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else {
		if i := strings.IndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		host = strings.TrimSuffix(host, ".")
	}
	type key struct{ hostTier, hostLen, kind, size, method, headers, query int }
	less := func(a, b key) bool {
		for _, d := range [][2]int{
			{a.hostTier, b.hostTier}, {-a.hostLen, -b.hostLen}, {a.kind, b.kind}, {-a.size, -b.size},
			{-a.method, -b.method}, {-a.headers, -b.headers}, {-a.query, -b.query},
		} {
			if d[0] != d[1] {
				return d[0] < d[1]
			}
		}
		return false
	}
	best, bestKey, found := miss, key{}, false
	for ri, r := range routes {
		// Host tier: 0 exact, 1 wildcard (longest suffix), 2 any.
		tier, hlen := -1, 0
		if len(r.Hosts) == 0 {
			tier = 2
		}
		for _, h := range r.Hosts {
			h = asciiLower(h)
			h = strings.TrimPrefix(strings.TrimSuffix(h, "]"), "[")
			if len(h) > 1 {
				h = strings.TrimSuffix(h, ".")
			}
			switch {
			case h == "*":
				if tier < 0 {
					tier = 2
				}
			case strings.HasPrefix(h, "*."):
				s := h[2:]
				if host != "" && strings.HasSuffix(host, "."+s) && len(host) > len(s)+1 {
					if tier < 0 || tier > 1 || (tier == 1 && len(s) > hlen) {
						tier, hlen = 1, len(s)
					}
				}
			case h == host && host != "":
				tier, hlen = 0, 0
			}
		}
		if tier < 0 || (tier != 2 && host == "") {
			continue
		}
		ms := r.Match
		if len(ms) == 0 {
			ms = []config.RouteMatch{{}}
		}
		for mi, m := range ms {
			k := key{hostTier: tier, hostLen: hlen, kind: kindPrefix, size: 1}
			pfx := "/"
			p := m.Path
			switch {
			case p != nil && p.Exact != "":
				k.kind, k.size = kindExact, 0
				if in.Path != p.Exact {
					continue
				}
				pfx = ""
			case p != nil && p.Regex != "":
				k.kind, k.size = kindRegex, len(p.Regex)
				if !refRegexp(p.Regex).MatchString(in.Path) {
					continue
				}
				pfx = ""
			case p != nil && p.Prefix != "":
				k.size = len(p.Prefix)
				pfx = strings.TrimRight(p.Prefix, "/")
				if pfx == "" {
					pfx = "/"
				}
				if pfx == "/" {
					if !strings.HasPrefix(in.Path, "/") {
						continue
					}
				} else if in.Path != pfx && !strings.HasPrefix(in.Path, pfx+"/") {
					continue
				}
			default:
				if !strings.HasPrefix(in.Path, "/") {
					continue
				}
			}
			if m.Method != "" {
				k.method = 1
				if m.Method != in.Method {
					continue
				}
			}
			k.headers, k.query = len(m.Headers), len(m.Query)
			ok := true
			for _, h := range m.Headers {
				v, has := in.Header.Get(h.Name)
				ok = ok && refCond(h.Value, h.Regex, h.Present, v, has)
			}
			for _, q := range m.Query {
				v, has := refQuery(in.Query, q.Name)
				ok = ok && refCond(q.Value, q.Regex, q.Present, v, has)
			}
			if !ok {
				continue
			}
			if !found || less(k, bestKey) {
				best, bestKey, found = Result{Route: ri, Match: mi, Prefix: pfx}, k, true
			}
		}
	}
	return best
}

var refRegexps sync.Map

// refRegexp compiles an anchored expression once.
func refRegexp(expr string) *regexp.Regexp {
	if re, ok := refRegexps.Load(expr); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile("^(?:" + expr + ")$")
	refRegexps.Store(expr, re)
	return re
}

func refCond(value, re string, present bool, v string, has bool) bool {
	switch {
	case !has:
		return false
	case present:
		return true
	case re != "":
		return refRegexp(re).MatchString(v)
	}
	return v == value
}

func refQuery(raw, name string) (string, bool) {
	for _, pair := range strings.Split(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k2, err1 := url.QueryUnescape(k)
		v2, err2 := url.QueryUnescape(v)
		if err1 == nil && k2 == name && err2 == nil {
			return v2, true
		}
	}
	return "", false
}

// benchRoutes is a 100-route table in the shape of a gateway config: a few hosts, mostly
// prefixes, some exact paths, methods, headers, regexes and a query match.
func benchRoutes() []config.Route {
	var rs []config.Route
	for i := range 100 {
		var r config.Route
		r.Name = fmt.Sprintf("r%d", i)
		switch i % 4 {
		case 0:
			r.Hosts = []string{"api.example.com"}
		case 1:
			r.Hosts = []string{"*.example.com"}
		case 2:
			r.Hosts = []string{fmt.Sprintf("svc%d.internal", i)}
		}
		switch i % 10 {
		case 0:
			r.Match = []config.RouteMatch{exact(fmt.Sprintf("/svc%d/health", i))}
		case 1:
			r.Match = []config.RouteMatch{withMethod(prefix(fmt.Sprintf("/svc%d", i)), "GET"), withMethod(prefix(fmt.Sprintf("/svc%d", i)), "POST")}
		case 2:
			r.Match = []config.RouteMatch{withHeaders(prefix(fmt.Sprintf("/svc%d", i)), hdr("x-canary", "1"))}
		case 3:
			r.Match = []config.RouteMatch{regex(fmt.Sprintf("/svc%d/items/[0-9]+", i))}
		default:
			r.Match = []config.RouteMatch{prefix(fmt.Sprintf("/svc%d/", i))}
		}
		rs = append(rs, r)
	}
	rs[0].Match = append(rs[0].Match, withQuery(exact("/search"), qry("q", "term")))
	rs = append(rs, config.Route{Name: "default", Match: []config.RouteMatch{prefix("/")}})
	return rs
}

type benchInput struct {
	name string
	in   Input
	want int // route index
}

func benchInputs() []benchInput {
	canary := httpmsg.Header{{Name: "User-Agent", Value: "bench"}, {Name: "X-Canary", Value: "1"}}
	return []benchInput{
		{"exact-host-prefix", Input{Host: "api.example.com", Path: "/svc4/users/7", Method: "GET"}, 4},
		{"exact-host-exact", Input{Host: "api.example.com", Path: "/svc40/health", Method: "GET"}, 40},
		{"wildcard-host", Input{Host: "www.example.com", Path: "/svc97/x", Method: "GET"}, 97},
		{"upper-host-port", Input{Host: "API.Example.com:8443", Path: "/svc96/users/7", Method: "GET"}, 96},
		{"header", Input{Host: "svc62.internal", Path: "/svc62/x", Method: "GET", Header: canary}, 62},
		{"method", Input{Host: "other.org", Path: "/svc71/x", Method: "POST"}, 71},
		{"regex", Input{Host: "other.org", Path: "/svc83/items/12345", Method: "GET"}, 83},
		{"fallback", Input{Host: "api.example.com", Path: "/nothing/here", Method: "GET"}, 100},
		{"query", Input{Host: "api.example.com", Path: "/search", Method: "GET", Query: "lang=en&q=term"}, 0},
	}
}

func BenchmarkMatch(b *testing.B) {
	routes := benchRoutes()
	tab, err := Compile(routes)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range benchInputs() {
		b.Run(bc.name, func(b *testing.B) {
			if got, ok := tab.Match(&bc.in); !ok || got.Route != bc.want || got != refMatch(routes, &bc.in) {
				b.Fatalf("Match = %+v, %v; want route %d", got, ok, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(&bc.in)
			}
		})
	}
}
