package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nginxConf is an nginx config that keeps every file it writes in {{DIR}} and serves {{DIR}}/www
// on {{ADDR}}, plus a 204 and a location that echoes forwarding headers.
const nginxConf = `
{{USER}}
worker_processes 1;
pid {{DIR}}/nginx.pid;
error_log {{DIR}}/error.log info;
events { worker_connections 64; }
http {
    access_log {{DIR}}/access.log;
    client_body_temp_path {{DIR}}/client_body;
    proxy_temp_path {{DIR}}/proxy;
    fastcgi_temp_path {{DIR}}/fastcgi;
    uwsgi_temp_path {{DIR}}/uwsgi;
    scgi_temp_path {{DIR}}/scgi;
    types { text/plain txt; }
    default_type application/octet-stream;
    server {
        listen {{ADDR}};
        server_name _;
        root {{DIR}}/www;
        location = /empty { return 204; }
        location = /headers {
            default_type text/plain;
            return 200 "$http_x_forwarded_for|$http_x_request_id|$http_x_team";
        }
        location / { }
    }
}
`

// startNginx runs nginx in the foreground on a free loopback port, serving the given files from
// its document root, and returns its address. nginx must be installed.
func startNginx(t *testing.T, files map[string]string) string {
	t.Helper()
	bin := requireTool(t, "nginx")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(www, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot read the private temporary directory.
		user = "user root root;"
	}
	addr := freeAddr(t)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fill(nginxConf, "USER", user, "DIR", dir, "ADDR", addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "nginx", bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "error.log")); err == nil {
				t.Logf("nginx error.log:\n%s", tail(string(b), logTail))
			}
		}
	})
	ok := pollUntil(10*time.Second, func() bool {
		if p.exited() {
			return true
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	if !ok || p.exited() {
		t.Fatalf("nginx did not start listening on %s", addr)
	}
	return addr
}

// TestNginxUpstream proxies curl's requests through meshgate to a real nginx: a static file, HEAD,
// a 204, and the forwarding headers nginx receives.
func TestNginxUpstream(t *testing.T) {
	t.Parallel()
	var page strings.Builder
	for i := range 400 {
		page.WriteString("line " + strconv.Itoa(i) + " of a static page served by nginx\n")
	}
	ngx := startNginx(t, map[string]string{"page.txt": page.String()})

	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: plain
    match: [{path: {prefix: /plain}}]
    filters:
      - rewrite: {pathPrefix: /}
    backends: [{service: nginx}]
  - name: nginx
    filters:
      - requestHeaders: {set: {X-Team: platform}}
    backends: [{service: nginx}]
services:
  - name: nginx
    endpoints: [{address: "{{NGINX}}"}]
`, "ADMIN", admin, "PUBLIC", public, "NGINX", ngx))
	base := "http://" + public

	t.Run("static file", func(t *testing.T) {
		r := runCurl(t, base+"/page.txt")
		if r.Status != 200 {
			t.Fatalf("status %d, want 200", r.Status)
		}
		if r.Body != page.String() {
			t.Fatalf("body differs from the file: got %d bytes, want %d", len(r.Body), page.Len())
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		r := runCurl(t, "--head", base+"/page.txt")
		if r.Status != 200 {
			t.Fatalf("status %d, want 200", r.Status)
		}
		if got := r.Header.Get("Content-Length"); got != strconv.Itoa(page.Len()) {
			t.Errorf("Content-Length = %q, want %d", got, page.Len())
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/plain" {
			t.Errorf("Content-Type = %q, want text/plain", ct)
		}
	})

	t.Run("204", func(t *testing.T) {
		r := runCurl(t, base+"/empty")
		if r.Status != 204 || r.Body != "" {
			t.Fatalf("got %d %q, want 204 and no body", r.Status, r.Body)
		}
	})

	t.Run("keep-alive after HEAD and 204", func(t *testing.T) {
		// Neither a HEAD response nor a 204 has a body: the connection must carry the next request
		// at once, and it must be the same connection.
		var conns []string
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			conns = append(conns, ci.Conn.LocalAddr().String())
		}}
		c := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{Proxy: nil}}
		defer c.CloseIdleConnections()
		for _, step := range []struct{ method, path string }{
			{http.MethodHead, "/page.txt"}, {http.MethodGet, "/empty"}, {http.MethodGet, "/page.txt"},
		} {
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), step.method, base+step.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s on a kept-alive connection: %v", step.method, step.path, err)
			}
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil {
				t.Fatalf("%s %s: reading the body: %v", step.method, step.path, err)
			}
			if step.path == "/page.txt" && step.method == http.MethodGet && (resp.StatusCode != 200 || string(body) != page.String()) {
				t.Fatalf("GET after HEAD and 204: status %d, %d body bytes", resp.StatusCode, len(body))
			}
		}
		if len(conns) != 3 || conns[0] != conns[1] || conns[1] != conns[2] {
			t.Errorf("the three requests used connections %q, want one kept-alive connection", conns)
		}
	})

	t.Run("forwarded headers", func(t *testing.T) {
		r := runCurl(t, base+"/headers")
		if r.Status != 200 {
			t.Fatalf("status %d, want 200", r.Status)
		}
		m := regexp.MustCompile(`^127\.0\.0\.1\|[0-9a-f]{32}\|platform$`)
		if !m.MatchString(r.Body) {
			t.Fatalf("nginx saw %q, want X-Forwarded-For 127.0.0.1, a 32-hex X-Request-Id and X-Team platform", r.Body)
		}
		id := strings.Split(r.Body, "|")[1]
		if got := r.Header.Get("X-Request-Id"); got != "" && got != id {
			t.Errorf("response X-Request-Id %q differs from the one sent upstream %q", got, id)
		}
	})

	t.Run("client request id and forwarded-for", func(t *testing.T) {
		r := runCurl(t, "-H", "X-Request-Id: client-chosen-id-1", "-H", "X-Forwarded-For: 203.0.113.9", base+"/headers")
		if want := "127.0.0.1|client-chosen-id-1|platform"; r.Body != want {
			t.Fatalf("nginx saw %q, want %q (the id kept, an untrusted X-Forwarded-For replaced)", r.Body, want)
		}
	})

	t.Run("Connection names hop-by-hop fields", func(t *testing.T) {
		r := runCurl(t, "-H", "Connection: X-Team, X-Forwarded-For", "-H", "X-Team: sneaky", base+"/plain/headers")
		if r.Status != 200 {
			t.Fatalf("status %d, want 200", r.Status)
		}
		m := regexp.MustCompile(`^127\.0\.0\.1\|[0-9a-f]{32}\|$`)
		if !m.MatchString(r.Body) {
			t.Fatalf("nginx saw %q, want X-Team stripped and X-Forwarded-For still 127.0.0.1", r.Body)
		}
	})
}
