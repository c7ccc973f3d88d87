package control

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// admin calls the plane's admin API and returns the status and body.
func (p *plane) admin(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.AdminAddr().String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const meshV1 = `version: 1
listeners: [{name: web, address: "127.0.0.1:0"}]
routes:
  - {name: users-api, backends: [{service: users}]}
services:
  - {name: users, discovery: {namespace: shop}}
`

const meshV2 = `version: 1
listeners: [{name: web, address: "127.0.0.1:0"}]
routes:
  - {name: users-api, backends: [{service: users}]}
  - {name: orders-api, match: [{path: {prefix: /orders}}], backends: [{service: orders}]}
services:
  - {name: users, discovery: {namespace: shop}}
  - {name: orders, discovery: {namespace: shop}}
`

func TestConfigLifecycle(t *testing.T) {
	p := startPlane(t, nil)
	put := func(doc string, hdr ...string) (int, string) {
		return p.admin(t, "PUT", "/v1/config", doc, append([]string{"X-Meshgate-Source", "mesh.yaml"}, hdr...)...)
	}
	code, body := put("version: 1\nservices:\n  - {name: s}\nroutes:\n  - {name: r, backends: [{service: t}]}\n")
	if code != http.StatusUnprocessableEntity ||
		!strings.Contains(body, `mesh.yaml:3: service \"s\": endpoints: at least one endpoint is required`) ||
		!strings.Contains(body, `mesh.yaml:5: route \"r\": backends[0].service: service \"t\" is not defined`) {
		t.Fatalf("invalid config: %d %s", code, body)
	}
	if code, _ := p.admin(t, "GET", "/v1/history", ""); code != 200 {
		t.Fatalf("history: %d", code)
	}
	if code, body := put(meshV1); code != 200 || !strings.Contains(body, `"version": 1`) {
		t.Fatalf("apply v1: %d %s", code, body)
	}
	if code, body := put(meshV2, "If-Match", "0"); code != http.StatusConflict {
		t.Fatalf("apply based on a stale version: %d %s, want 409", code, body)
	}
	if code, body := put(meshV2, "If-Match", "1"); code != 200 {
		t.Fatalf("apply v2: %d %s", code, body)
	}
	code, body = p.admin(t, "GET", "/v1/config/route/orders-api", "")
	if code != 200 || !strings.Contains(body, "name: orders-api") || strings.Contains(body, "users-api") {
		t.Fatalf("get one route: %d %s", code, body)
	}
	if code, _ := p.admin(t, "GET", "/v1/config/route/nope", ""); code != 404 {
		t.Errorf("get a missing route: %d", code)
	}
	// Deleting a service a route still uses is refused, naming the route.
	code, body = p.admin(t, "DELETE", "/v1/config/service/orders", "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, `route \"orders-api\": backends[0].service: service \"orders\" is not defined`) {
		t.Fatalf("delete a used service: %d %s", code, body)
	}
	if code, body := p.admin(t, "DELETE", "/v1/config/route/orders-api", ""); code != 200 || !strings.Contains(body, `"version": 3`) {
		t.Fatalf("delete a route: %d %s", code, body)
	}
	if code, body := p.admin(t, "POST", "/v1/rollback/1", ""); code != 200 || !strings.Contains(body, `"version": 4`) {
		t.Fatalf("rollback: %d %s", code, body)
	}
	_, cur := p.admin(t, "GET", "/v1/config", "")
	if cur != meshV1 {
		t.Errorf("after rollback to 1 the config is\n%s\nwant\n%s", cur, meshV1)
	}
	_, body = p.admin(t, "GET", "/v1/history", "")
	var hist []RevisionInfo
	if err := json.Unmarshal([]byte(body), &hist); err != nil {
		t.Fatal(err)
	}
	var comments []string
	for _, h := range hist {
		comments = append(comments, h.Comment)
	}
	if got := strings.Join(comments, ","); got != "rollback to 1,delete route orders-api,apply,apply" {
		t.Errorf("history comments %q", got)
	}
	if hist[0].Digest == "" || hist[0].Digest != hist[3].Digest {
		t.Errorf("a rollback stores the same document: digests %s and %s", hist[0].Digest, hist[3].Digest)
	}
	if code, body := p.admin(t, "POST", "/v1/rollback/99", ""); code != 404 {
		t.Errorf("rollback to a missing version: %d %s", code, body)
	}
}

func TestAdminToken(t *testing.T) {
	p := startPlane(t, func(o *Options) { o.AdminToken = "0123456789abcdef-secret" })
	if code, _ := p.admin(t, "GET", "/v1/status", ""); code != http.StatusUnauthorized {
		t.Errorf("status without the token: %d", code)
	}
	// /ready answers 503 until the first state is built, but never asks for the token.
	code := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if code, _ = p.admin(t, "GET", "/ready", ""); code != http.StatusServiceUnavailable {
			break
		}
	}
	if code != 200 {
		t.Errorf("ready needs no token: %d", code)
	}
	if code, body := p.admin(t, "GET", "/v1/status", "", "Authorization", "Bearer 0123456789abcdef-secret"); code != 200 {
		t.Errorf("status with the token: %d %s", code, body)
	}
}
