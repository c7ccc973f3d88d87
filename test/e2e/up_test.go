package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/mesh/netns"
)

// TestUp runs `meshgate up` (the whole local mesh) and tries what it tells a new user to try,
// with network namespaces (as root) and on loopback (the fallback without them).
func TestUp(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	for _, mode := range []string{"netns", "loopback"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			if mode == "netns" {
				if err := netns.Available(); err != nil {
					t.Skipf("network namespaces are not available here: %v", err)
				}
			}
			testUp(t, mode)
		})
	}
}

func testUp(t *testing.T, mode string) {
	listen, admin, controlAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	p := startProcess(t, "meshgate up", meshgateBin, "up", "--mode", mode, "--listen", listen, "--admin", admin,
		"--control", "127.0.0.1:0", "--control-admin", controlAdmin)
	m := &Meshgate{Process: p, Admin: admin}
	m.waitReady()
	base := "http://" + listen
	waitServes(t, 60*time.Second, base+"/shop/order", `"service": "payments"`)

	t.Run("two sidecar hops", func(t *testing.T) {
		r := runCurl(t, base+"/shop/order")
		var chain struct {
			Service string `json:"service"`
			Next    struct {
				Service string `json:"service"`
				Next    struct {
					Service string `json:"service"`
				} `json:"next"`
			} `json:"next"`
		}
		if err := json.Unmarshal([]byte(r.Body), &chain); err != nil || r.Status != 200 {
			t.Fatalf("%d %v: %s", r.Status, err, r.Body)
		}
		if chain.Service != "web" || chain.Next.Service != "orders" || chain.Next.Next.Service != "payments" {
			t.Fatalf("chain %+v, want web → orders → payments", chain)
		}
	})

	t.Run("refused by identity", func(t *testing.T) {
		r := runCurl(t, base+"/payments")
		if r.Status != 403 || r.Header.Get("X-Meshgate-Reason") != "authz_denied" {
			t.Fatalf("got %d %q, want 403 authz_denied", r.Status, r.Header.Get("X-Meshgate-Reason"))
		}
	})

	t.Run("explain, top and impact", func(t *testing.T) {
		server := "http://" + controlAdmin
		r := runCurl(t, base+"/shop/order", "-H", "X-API-Key: acme-key")
		id := r.Header.Get("X-Request-Id")
		if r.Status != 200 || id == "" {
			t.Fatalf("call as acme: %d, request id %q", r.Status, id)
		}
		var out string
		if !pollUntil(20*time.Second, func() bool {
			code, stdout, _ := runMeshgate(t, t.TempDir(), "explain", id, "--server", server)
			out = stdout
			return code == 0 && strings.Count(stdout, "consumer acme") >= 4 && strings.Contains(stdout, "payments")
		}) {
			t.Fatalf("meshgate explain %s: the consumer at every hop, down to payments:\n%s", id, out)
		}
		if !pollUntil(30*time.Second, func() bool {
			code, stdout, _ := runMeshgate(t, t.TempDir(), "top", "--once", "--server", server)
			out = stdout
			return code == 0 && strings.Contains(stdout, "payments")
		}) {
			t.Fatalf("meshgate top shows no edge to payments:\n%s", out)
		}
		if !pollUntil(30*time.Second, func() bool {
			code, stdout, _ := runMeshgate(t, t.TempDir(), "impact", "--service", "orders", "--server", server)
			out = stdout
			return code == 0 && strings.Contains(stdout, "acme")
		}) {
			t.Fatalf("meshgate impact --service orders does not name acme:\n%s", out)
		}
	})

	t.Run("failover", func(t *testing.T) {
		if r := runCurl(t, base+"/orders/crash", "-X", "POST"); r.Status != 200 {
			t.Fatalf("crash: %d %s", r.Status, r.Body)
		}
		for i := range 20 {
			if r := runCurl(t, base+"/shop/order"); r.Status != 200 {
				t.Fatalf("call %d after one orders replica stopped: %d %s", i, r.Status, r.Body)
			}
		}
	})

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
