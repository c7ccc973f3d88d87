package filter

import (
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestReplacePrefix(t *testing.T) {
	for _, tc := range []struct {
		desc, path, prefix, repl, want string
	}{
		{"strip to root", "/users/7", "/users", "/", "/7"},
		{"exact prefix becomes root", "/users", "/users", "/", "/"},
		{"replace with longer", "/users/7", "/users", "/v2/people", "/v2/people/7"},
		{"trailing slash in prefix", "/users/7", "/users/", "/api", "/api/7"},
		{"trailing slash in replacement", "/users/7", "/users", "/api/", "/api/7"},
		{"root prefix", "/a/b", "/", "/x", "/x/a/b"},
		{"not a prefix leaves path", "/other", "/users", "/", "/other"},
	} {
		if got := ReplacePrefix(tc.path, tc.prefix, tc.repl); got != tc.want {
			t.Errorf("%s: ReplacePrefix(%q, %q, %q) = %q, want %q", tc.desc, tc.path, tc.prefix, tc.repl, got, tc.want)
		}
	}
}

func TestRedirectLocation(t *testing.T) {
	for _, tc := range []struct {
		desc                           string
		rd                             config.Redirect
		scheme, authority, path, query string
		prefix                         string
		want                           string
	}{
		{"to https drops the port", config.Redirect{Scheme: "https"}, "http", "example.com:8080", "/a", "q=1", "", "https://example.com/a?q=1"},
		{"to https with port", config.Redirect{Scheme: "https", Port: 8443}, "http", "example.com:8080", "/a", "", "", "https://example.com:8443/a"},
		{"default port omitted", config.Redirect{Port: 443, Scheme: "https"}, "http", "example.com", "/", "", "", "https://example.com/"},
		{"keep port when scheme same", config.Redirect{Host: "new.example.com"}, "http", "old.example.com:8080", "/x", "", "", "http://new.example.com:8080/x"},
		{"full path", config.Redirect{Path: "/login"}, "https", "a.example", "/x/y", "r=2", "", "https://a.example/login?r=2"},
		{"prefix replace", config.Redirect{PathPrefix: "/v2"}, "https", "a.example", "/v1/users", "", "/v1", "https://a.example/v2/users"},
		{"ipv6 authority", config.Redirect{Scheme: "https"}, "http", "[::1]:8080", "/", "", "", "https://[::1]/"},
	} {
		got := RedirectLocation(&tc.rd, tc.scheme, tc.authority, tc.path, tc.prefix, tc.query)
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.desc, got, tc.want)
		}
	}
}

func TestHeaderEditOrder(t *testing.T) {
	e := NewHeaderEdit(&config.HeaderFilter{
		Remove: []string{"x-debug"},
		Set:    map[string]string{"X-Team": "users", "x-b": "2"},
		Add:    map[string]string{"X-Trace": "t1"},
	})
	h := httpmsg.Header{{Name: "X-Debug", Value: "1"}, {Name: "x-team", Value: "old"}, {Name: "X-Team", Value: "older"}, {Name: "X-Trace", Value: "t0"}}
	e.Apply(&h)
	want := httpmsg.Header{{Name: "x-team", Value: "users"}, {Name: "X-Trace", Value: "t0"}, {Name: "x-b", Value: "2"}, {Name: "X-Trace", Value: "t1"}}
	if len(h) != len(want) {
		t.Fatalf("got %v, want %v", h, want)
	}
	for i := range want {
		if h[i] != want[i] {
			t.Fatalf("got %v, want %v", h, want)
		}
	}
}
