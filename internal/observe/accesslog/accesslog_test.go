package accesslog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLineIsJSONWithEveryField(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, nil)
	l.Log(&Entry{RequestID: "abc", Listener: "public", Route: "users", Service: "users",
		Endpoint: "127.0.0.1:9001", Method: "GET", Host: "api.example.com", Path: "/users/7", Proto: "HTTP/1.1",
		Status: 503, Reason: "upstream_unavailable", Duration: 1500 * time.Microsecond,
		UpstreamDuration: time.Millisecond, BytesIn: 3, BytesOut: 10, ClientIP: "10.0.0.1", Error: "dial refused"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not one JSON line: %v: %q", err, buf.String())
	}
	want := map[string]any{"request_id": "abc", "route": "users", "service": "users", "endpoint": "127.0.0.1:9001",
		"status": 503.0, "reason": "upstream_unavailable", "duration_ms": 1.5, "upstream_ms": 1.0,
		"bytes_in": 3.0, "bytes_out": 10.0, "error": "dial refused"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["level"]; ok {
		t.Error("access log line carries a level")
	}
	if strings.Count(buf.String(), "\n") != 1 {
		t.Errorf("want exactly one line, got %q", buf.String())
	}
}

func TestFileIsAppendedAndFlushedOnTimer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(&Entry{RequestID: "one", Status: 200})
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), `"request_id":"one"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("line not flushed within 5s: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOffIsNil(t *testing.T) {
	l, err := Open("off")
	if err != nil || l != nil {
		t.Fatalf("Open(off) = %v, %v", l, err)
	}
	l.Log(&Entry{}) // a nil logger discards
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
