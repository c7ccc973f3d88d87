package authz

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
)

// FuzzDecide decides fuzzed requests against a fixed policy and checks that the deny rules
// cannot be bypassed: whenever a deny rule's condition holds, computed here independently of the
// package, the request is denied, and by the first such rule.
func FuzzDecide(f *testing.F) {
	pol := mustCompile(f, &config.AuthzPolicy{
		Rules: []config.AuthzRule{
			deny("no-admin", config.AuthzRule{Paths: []config.PathMatch{prefix("/admin/")}}),
			deny("no-debug", config.AuthzRule{Headers: []config.HeaderMatch{{Name: "X-Debug", Present: true}}}),
			deny("blocked", config.AuthzRule{SourceCIDRs: []string{"10.0.0.0/8"}}),
			deny("no-delete", config.AuthzRule{CEL: `request.method == "DELETE" || ("x-mode" in request.headers && request.headers["x-mode"] == "unsafe")`}),
			allow("readers", config.AuthzRule{Methods: []string{"GET"}, Headers: []config.HeaderMatch{{Name: "X-Team", Regex: "[a-z]+"}}}),
			allow("cel", config.AuthzRule{CEL: `request.path.startsWith("/public") && source.ip != ""`}),
		},
		Default: config.AuthzAllow,
	})
	f.Add("GET", "/admin", "X-Team", "ops", "192.0.2.1", false)
	f.Add("GET", "/ADMIN/x", "x-debug", "", "::ffff:10.0.0.1", true)
	f.Add("DELETE", "/%61dmin/..;/x", "X-Mode", "unsafe", "2001:db8::1", true)
	f.Add("POST", "//public", "x-MODE", "safe", "", false)
	f.Add("get", "/x/../admin", "X-Debug\x00", "1", "10.0.0.1%eth0", true)
	f.Fuzz(func(t *testing.T, method, path, name, value, ip string, normalise bool) {
		if normalise {
			p, err := pathnorm.Normalize(path, pathnorm.Options{})
			if err != nil {
				return
			}
			path = p
		}
		addr, _ := netip.ParseAddr(ip)
		in := &Input{
			Method:   method,
			Path:     path,
			Host:     "h",
			Header:   httpmsg.Header{{Name: "Accept", Value: "*/*"}, {Name: name, Value: value}},
			SourceIP: addr,
		}
		if len(value) > 0 && value[0]&1 == 1 {
			in.Identity = &proxy.Identity{Consumer: value, Claims: map[string]any{"scope": value}}
		}
		got := pol.Decide(in)
		if again := pol.Decide(in); again != got {
			t.Fatalf("Decide not deterministic: %+v then %+v", got, again)
		}

		// The deny conditions, restated without the package's helpers.
		var want string
		unmapped := addr.Unmap()
		switch {
		case path == "/admin" || strings.HasPrefix(path, "/admin/"):
			want = "no-admin"
		case lowerASCII(name) == "x-debug":
			want = "no-debug"
		case unmapped.Is4() && unmapped.As4()[0] == 10:
			want = "blocked"
		case method == "DELETE" || (lowerASCII(name) == "x-mode" && value == "unsafe"):
			want = "no-delete"
		}
		if want != "" && (got.Allow || got.Rule != want) {
			t.Fatalf("Decide(%q %q, %q: %q, %s) = %+v, want denied by %s", method, path, name, value, ip, got, want)
		}
		if want == "" && !got.Allow {
			t.Fatalf("Decide(%q %q, %q: %q, %s) = %+v, want allowed", method, path, name, value, ip, got)
		}
	})
}

// lowerASCII lowers ASCII letters only, as HTTP header names compare.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
