package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestWebSocket tunnels a WebSocket connection through meshgate to a Go echo server: text and
// binary messages come back unchanged, and the close handshake completes on both sides.
func TestWebSocket(t *testing.T) {
	t.Parallel()
	closed := make(chan websocket.StatusCode, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		for {
			typ, data, err := c.Read(ctx)
			if err != nil {
				closed <- websocket.CloseStatus(err)
				return
			}
			if err := c.Write(ctx, typ, data); err != nil {
				return
			}
		}
	}))
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: ws
    match: [{path: {prefix: /ws}}]
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	ctx := ctxTimeout(t, 20*time.Second)
	c, resp, err := websocket.Dial(ctx, "ws://"+public+"/ws/echo", &websocket.DialOptions{HTTPClient: newHTTPClient()})
	if err != nil {
		t.Fatalf("dial through meshgate: %v", err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake status %d, want 101", resp.StatusCode)
	}
	for i := range 20 {
		typ, msg := websocket.MessageText, []byte(fmt.Sprintf("text message %d", i))
		if i%2 == 1 {
			typ, msg = websocket.MessageBinary, bytes.Repeat([]byte{byte(i), 0, 0xff}, 100*i)
		}
		if err := c.Write(ctx, typ, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		gotTyp, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if gotTyp != typ || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: got %v of %d bytes, want %v of %d bytes", i, gotTyp, len(got), typ, len(msg))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "done"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	select {
	case code := <-closed:
		if code != websocket.StatusNormalClosure {
			t.Fatalf("upstream saw close status %v, want %v", code, websocket.StatusNormalClosure)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream did not see the close within 5s")
	}
}
