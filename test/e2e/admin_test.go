package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testpki"
)

// adminToken is the admin API token of these tests; tokens must have at least 16 characters.
const adminToken = "s3cret-admin-token-0123456789"

// auditEntry is one line of the audit log.
type auditEntry struct {
	Actor      string   `json:"actor"`
	Source     string   `json:"source"`
	Result     string   `json:"result"`
	OldVersion uint64   `json:"oldVersion"`
	NewVersion uint64   `json:"newVersion"`
	SHA256     string   `json:"sha256"`
	Errors     []string `json:"errors"`
}

// readAudit returns the entries of the audit log at path.
func readAudit(t *testing.T, path string) []auditEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// adminDo sends a request to the admin API with the token (when not empty).
func adminDo(t *testing.T, c *http.Client, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxTimeout(t, requestTimeout), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAdminTokenAndAuditLog: with tokenEnv set, every admin endpoint but /live and /ready needs
// the bearer token (compared in constant time; a wrong one gets 401), and every config change —
// at startup, through PUT /config (applied or refused), on SIGHUP and on a file change — is
// appended to the audit log with who asked, the versions before and after and the config's
// digest. Secrets never appear in the log.
func TestAdminTokenAndAuditLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	adminAddr := freeAddr(t)
	auditPath := filepath.Join(dir, "audit.log")
	cfg := fill(`version: 1
admin: {address: "{{ADMIN}}", tokenEnv: MESHGATE_ADMIN_TOKEN, auditLog: "{{AUDIT}}"}
accessLog: {path: "off"}
listeners: [{name: public, address: "{{LISTEN}}"}]
routes:
  - name: hello
    filters: [{respond: {body: "hello"}}]
`, "ADMIN", adminAddr, "AUDIT", auditPath, "LISTEN", freeAddr(t))
	path := filepath.Join(dir, "meshgate.yaml")
	writeFileAtomic(t, path, cfg)
	p := startProcessEnv(t, "meshgate", []string{"MESHGATE_ADMIN_TOKEN=" + adminToken}, meshgateBin,
		"gateway", "--config", path, "--log-level", "debug")
	m := &Meshgate{Process: p, Admin: adminAddr, ConfigPath: path}
	m.waitReady() // /ready needs no token
	c := newHTTPClient()
	base := "http://" + adminAddr

	for _, path := range []string{"/metrics", "/config", "/status"} {
		if code, _ := adminDo(t, c, "GET", base+path, "", ""); code != 401 {
			t.Errorf("GET %s without the token: %d, want 401", path, code)
		}
		if code, _ := adminDo(t, c, "GET", base+path, "wrong-token-wrong-token", ""); code != 401 {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
		if code, _ := adminDo(t, c, "GET", base+path, adminToken, ""); code != 200 {
			t.Errorf("GET %s with the token: %d, want 200", path, code)
		}
	}
	if code, _ := adminDo(t, c, "GET", base+"/live", "", ""); code != 200 {
		t.Errorf("GET /live without the token: %d, want 200", code)
	}
	if code, _ := adminDo(t, c, "PUT", base+"/config", "", cfg); code != 401 {
		t.Fatalf("PUT /config without the token: %d, want 401", code)
	}
	if code, body := adminDo(t, c, "PUT", base+"/config", adminToken, cfg); code != 200 {
		t.Fatalf("PUT /config with the token: %d %s", code, body)
	}
	if code, _ := adminDo(t, c, "PUT", base+"/config", adminToken, "version: 1\nlisteners: 3\n"); code != 400 {
		t.Fatalf("PUT of a bad config: %d, want 400", code)
	}
	m.signal(syscall.SIGHUP)
	writeFileAtomic(t, path, cfg+"\n# edited\n")
	var entries []auditEntry
	if !pollUntil(10*time.Second, func() bool {
		entries = readAudit(t, auditPath)
		return len(entries) >= 5
	}) {
		t.Fatalf("the audit log has %d entries, want 5: %+v", len(entries), entries)
	}
	want := []struct{ actor, result string }{
		{"startup", "applied"}, {"admin-api", "applied"}, {"admin-api", "refused"}, {"", "applied"}, {"", "applied"},
	}
	reloads := map[string]bool{}
	for i, w := range want {
		e := entries[i]
		if w.actor != "" && !strings.HasPrefix(e.Actor, w.actor) || e.Result != w.result {
			t.Errorf("entry %d: actor %q result %q, want %q %q", i, e.Actor, e.Result, w.actor, w.result)
		}
		if w.actor == "" {
			reloads[e.Actor] = true
		}
		if e.Result == "applied" && e.NewVersion != uint64(i+1-countRefused(entries[:i])) {
			t.Errorf("entry %d: new version %d", i, e.NewVersion)
		}
		if i > 0 && e.OldVersion == 0 {
			t.Errorf("entry %d has no old version", i)
		}
	}
	if !reloads["SIGHUP"] || !reloads["file change"] {
		t.Errorf("reload actors %v, want SIGHUP and file change", reloads)
	}
	if !strings.Contains(entries[1].Actor, "(token)") || entries[1].SHA256 == "" {
		t.Errorf("the PUT entry: %+v", entries[1])
	}
	if len(entries[2].Errors) == 0 {
		t.Errorf("the refused PUT's entry carries no errors")
	}
	raw, _ := os.ReadFile(auditPath)
	if strings.Contains(string(raw), adminToken) {
		t.Fatal("the audit log contains the admin token")
	}
	if strings.Contains(m.stdout.String()+m.stderr.String(), adminToken) {
		t.Fatal("meshgate's log contains the admin token")
	}
}

// countRefused counts the refused entries.
func countRefused(es []auditEntry) int {
	n := 0
	for _, e := range es {
		if e.Result == "refused" {
			n++
		}
	}
	return n
}

// TestAdminMutualTLS: an admin API served over TLS with a client CA and clientAuth "require"
// serves only clients whose certificate the CA issued; the audit log names the client's subject.
func TestAdminMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testpki.New(t, dir, "admin.example.test")
	operator := pki.Client("operator", "Example Ops")
	stranger := testpki.New(t, t.TempDir()).Client("mallory", "Elsewhere")
	srv := pki.Certs["admin.example.test"]
	adminAddr := freeAddr(t)
	auditPath := filepath.Join(dir, "audit.log")
	cfg := fill(`version: 1
admin:
  address: "{{ADMIN}}"
  auditLog: "{{AUDIT}}"
  tls:
    certificates: [{cert: "{{CERT}}", key: "{{KEY}}"}]
    clientCA: "{{CA}}"
    clientAuth: require
accessLog: {path: "off"}
listeners: [{name: public, address: "{{LISTEN}}"}]
routes:
  - name: hello
    filters: [{respond: {body: "hello"}}]
`, "ADMIN", adminAddr, "AUDIT", auditPath, "CERT", srv.Cert, "KEY", srv.Key, "CA", pki.CAFile, "LISTEN", freeAddr(t))
	path := filepath.Join(dir, "meshgate.yaml")
	writeFileAtomic(t, path, cfg)
	startProcess(t, "meshgate", meshgateBin, "gateway", "--config", path)
	client := func(certs ...tls.Certificate) *http.Client {
		tc := &tls.Config{RootCAs: pki.Pool, ServerName: "admin.example.test"}
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if len(certs) == 0 {
				return &tls.Certificate{}, nil
			}
			return &certs[0], nil
		}
		return &http.Client{Timeout: requestTimeout, Transport: &http.Transport{TLSClientConfig: tc}}
	}
	base := "https://" + adminAddr
	ok := client(operator.Pair)
	if !pollUntil(readyTimeout, func() bool {
		resp, err := ok.Get(base + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("the admin API never answered the operator")
	}
	for name, c := range map[string]*http.Client{"no certificate": client(), "another CA's certificate": client(stranger.Pair)} {
		if resp, err := c.Get(base + "/config"); err == nil {
			resp.Body.Close()
			t.Errorf("%s: served with status %d", name, resp.StatusCode)
		}
	}
	if code, body := adminDo(t, ok, "PUT", base+"/config", "", cfg); code != 200 {
		t.Fatalf("PUT /config as the operator: %d %s", code, body)
	}
	entries := readAudit(t, auditPath)
	if len(entries) != 2 || !strings.Contains(entries[1].Actor, "CN=operator") {
		t.Fatalf("audit entries %+v; want the startup and the operator's PUT naming CN=operator", entries)
	}
}
