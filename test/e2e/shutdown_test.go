package e2e

import (
	"io"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown sends SIGTERM while a request is in flight to a slow upstream: the request
// must still complete, and meshgate must then exit 0 promptly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "slow but complete")
	}))
	admin, public := freeAddr(t), freeAddr(t)
	m := startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: slow
    backends: [{service: slow}]
services:
  - name: slow
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := newHTTPClient().Get("http://" + public + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{status: resp.StatusCode, body: string(b), err: err}
	}()
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the upstream within 5s")
	}
	m.signal(syscall.SIGTERM)

	select {
	case r := <-done:
		if r.err != nil || r.status != 200 || r.body != "slow but complete" {
			t.Fatalf("in-flight request during shutdown: status %d body %q error %v, want 200 \"slow but complete\"", r.status, r.body, r.err)
		}
	case <-time.After(requestTimeout):
		t.Fatal("the in-flight request did not complete")
	}
	code, exited := m.wait(10 * time.Second)
	if !exited {
		t.Fatal("meshgate did not exit within 10s of SIGTERM")
	}
	if code != 0 {
		t.Fatalf("meshgate exited with code %d after SIGTERM, want 0", code)
	}
}
