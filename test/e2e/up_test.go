package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestUp runs `meshgate up` and tries what it tells a new user to try.
func TestUp(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	listen, admin := freeAddr(t), freeAddr(t)
	p := startProcess(t, "meshgate up", meshgateBin, "up", "--listen", listen, "--admin", admin)
	m := &Meshgate{Process: p, Admin: admin}
	m.waitReady()
	base := "http://" + listen

	t.Run("root", func(t *testing.T) {
		r := runCurl(t, base+"/")
		if r.Status != 200 || !strings.Contains(r.Body, "meshgate is up") {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
	})

	t.Run("users round robin", func(t *testing.T) {
		var servedBy []string
		for range 2 {
			r := runCurl(t, base+"/users")
			if r.Status != 200 {
				t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
			}
			var users []struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			}
			if err := json.Unmarshal([]byte(r.Body), &users); err != nil {
				t.Fatalf("body is not a JSON list of users: %v\n%s", err, r.Body)
			}
			if len(users) != 3 {
				t.Fatalf("%d users, want 3: %s", len(users), r.Body)
			}
			servedBy = append(servedBy, r.Header.Get("X-Served-By"))
		}
		if servedBy[0] == "" || servedBy[0] == servedBy[1] {
			t.Fatalf("X-Served-By of two consecutive requests: %q, want two different instances", servedBy)
		}
	})

	t.Run("echo", func(t *testing.T) {
		r := runCurl(t, base+"/echo/hi")
		if r.Status != 200 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		var seen struct {
			Path    string              `json:"path"`
			Headers map[string][]string `json:"headers"`
		}
		if err := json.Unmarshal([]byte(r.Body), &seen); err != nil {
			t.Fatalf("echo body: %v\n%s", err, r.Body)
		}
		if seen.Path != "/hi" {
			t.Errorf("upstream saw path %q, want /hi", seen.Path)
		}
		if got := seen.Headers["X-Team"]; len(got) != 1 || got[0] != "demo" {
			t.Errorf("upstream saw X-Team %q, want [demo]", got)
		}
		if got := seen.Headers["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
			t.Errorf("upstream saw X-Forwarded-For %q, want [127.0.0.1]", got)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		r := runCurl(t, base+"/people")
		if r.Status != 301 {
			t.Fatalf("status %d, want 301", r.Status)
		}
		loc, err := url.Parse(r.Header.Get("Location"))
		if err != nil || loc.Path != "/users" || (loc.Host != "" && loc.Host != listen) {
			t.Fatalf("Location %q, want /users on this gateway", r.Header.Get("Location"))
		}
		if got := r.Header.Get("X-Meshgate-Reason"); got != "redirect" {
			t.Errorf("X-Meshgate-Reason %q, want redirect", got)
		}
	})

	t.Run("no route", func(t *testing.T) {
		r := runCurl(t, base+"/nope")
		if r.Status != 404 || r.Header.Get("X-Meshgate-Reason") != "no_route" {
			t.Fatalf("got %d with reason %q, want 404 no_route", r.Status, r.Header.Get("X-Meshgate-Reason"))
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := runCurl(t, "http://"+admin+"/metrics")
		if r.Status != 200 || !strings.Contains(r.Body, "meshgate_http_requests_total{") {
			t.Fatalf("admin /metrics: status %d, no meshgate_http_requests_total series in:\n%s", r.Status, tail(r.Body, 4096))
		}
		if !strings.Contains(r.Body, `reason="no_route"`) {
			t.Errorf("no request counted with reason no_route")
		}
	})
}
