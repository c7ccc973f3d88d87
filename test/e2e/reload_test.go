package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// reloadConfig is a gateway config whose only route answers with {{BODY}}.
const reloadConfig = `version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: hello
    filters:
      - respond: {status: 200, body: "{{BODY}}"}
`

// brokenReloadConfig has an unknown field on line brokenLine.
const brokenReloadConfig = `version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: hello
    filters:
      - respond: {status: 200, bodie: "broken"}
`

// brokenLine is the line of the error in brokenReloadConfig.
const brokenLine = 9

// reloadTimeout bounds how long a config change may take to be served.
const reloadTimeout = 10 * time.Second

// TestReload changes the running config through its file: a good change is served, a broken one
// is refused (the old config keeps serving, GET /status and the metrics say why), and SIGHUP
// applies a change the file watcher cannot see.
func TestReload(t *testing.T) {
	t.Parallel()
	admin, public := freeAddr(t), freeAddr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.yaml")
	cfg := func(body string) string {
		return fill(reloadConfig, "ADMIN", admin, "PUBLIC", public, "BODY", body)
	}
	writeFileAtomic(t, path, cfg("version one"))
	m := startGatewayFile(t, admin, path)
	client := newHTTPClient()
	get := func() string {
		resp, body := httpGet(t, client, "http://"+public+"/", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		return body
	}
	waitBody := func(want, why string) {
		t.Helper()
		var last string
		if !pollUntil(reloadTimeout, func() bool { last = get(); return last == want }) {
			t.Fatalf("%s: still serving %q after %v, want %q", why, last, reloadTimeout, want)
		}
	}
	if got := get(); got != "version one" {
		t.Fatalf("initial body %q", got)
	}

	// A good change, written the way editors write: a new file renamed over the old one.
	writeFileAtomic(t, path, cfg("version two"))
	waitBody("version two", "after the file was replaced")

	// A broken change is refused and reported; the running config keeps serving.
	failures := m.metric(`meshgate_config_reloads_total{result="failure"}`)
	writeFileAtomic(t, path, fill(brokenReloadConfig, "ADMIN", admin, "PUBLIC", public))
	var st struct {
		Version   uint64 `json:"version"`
		Source    string `json:"source"`
		LastError *struct {
			Source string   `json:"source"`
			Errors []string `json:"errors"`
		} `json:"lastError"`
	}
	ok := pollUntil(reloadTimeout, func() bool {
		code, body := m.adminGet("/status")
		if code != 200 {
			t.Fatalf("GET /status: %d %s", code, body)
		}
		st.LastError = nil
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET /status: %v\n%s", err, body)
		}
		return st.LastError != nil
	})
	if !ok {
		t.Fatalf("GET /status shows no lastError %v after a broken config was written", reloadTimeout)
	}
	where := path + ":" + strconv.Itoa(brokenLine) + ":"
	found := false
	for _, e := range st.LastError.Errors {
		if strings.HasPrefix(e, where) && strings.Contains(e, "bodie") {
			found = true
		}
	}
	if !found {
		t.Errorf("lastError.errors = %q, want one starting %q and naming the field", st.LastError.Errors, where)
	}
	for range 5 {
		if got := get(); got != "version two" {
			t.Fatalf("after a refused config: serving %q, want the previous %q", got, "version two")
		}
	}
	if after := m.metric(`meshgate_config_reloads_total{result="failure"}`); after < failures+1 {
		t.Errorf(`meshgate_config_reloads_total{result="failure"} = %v after a refused config, want at least %v`, after, failures+1)
	}

	// SIGHUP. The config path becomes a symlink to a file in another directory, which the file
	// watcher does not watch, so only the signal can make the fixed content take effect.
	hidden := filepath.Join(t.TempDir(), "target.yaml")
	writeFileAtomic(t, hidden, fill(brokenReloadConfig, "ADMIN", admin, "PUBLIC", public))
	link := filepath.Join(dir, ".link")
	if err := os.Symlink(hidden, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, path); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the watcher act on the rename (it reloads the broken target)
	writeFileAtomic(t, hidden, cfg("version three"))
	m.signal(syscall.SIGHUP)
	waitBody("version three", "after SIGHUP")
	if code, body := m.adminGet("/status"); code != http.StatusOK || strings.Contains(body, `"lastError"`) {
		t.Errorf("GET /status after a successful reload: %d %s, want no lastError", code, body)
	}
}
