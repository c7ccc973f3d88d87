package e2e

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRequestSmuggling sends, as raw bytes, every HTTP/1 framing trick that has let requests be
// smuggled past proxies (Envoy, HAProxy, Go's reverse proxy and others), to the real binary. Each
// must be refused with 400 (501 for an unknown coding) before anything reaches the upstream, and
// the connection closed so that no smuggled request can follow; the two that are legal (optional
// white space around a value) must reach the upstream as exactly one normalised request.
func TestRequestSmuggling(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "uri="+r.RequestURI)
	}))
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: "off"}
listeners: [{name: public, address: "{{PUBLIC}}"}]
routes:
  - name: app
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: test\r\n\r\n"
	post := func(fields, body string) string {
		return "POST /x HTTP/1.1\r\nHost: test\r\n" + fields + "\r\n" + body
	}
	cases := []struct {
		desc string
		raw  string
		want int // 400 unless set
	}{
		{"Content-Length with Transfer-Encoding", post("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+smuggled), 0},
		{"Transfer-Encoding then Content-Length", post("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n", "0\r\n\r\n"+smuggled), 0},
		{"TE 'chunked ' with trailing space (optional white space: one normalised request)", post("Transfer-Encoding: chunked \r\n", "0\r\n\r\n"), 200},
		{"TE xchunked", post("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"+smuggled), 501},
		{"TE chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"+smuggled), 0},
		{"TE twice", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"+smuggled), 0},
		{"TE with a tab before the value (optional white space: one normalised request)", post("Transfer-Encoding:\tchunked\r\n", "0\r\n\r\n"), 200},
		{"TE with a vertical tab", post("Transfer-Encoding: \vchunked\r\n", "0\r\n\r\n"+smuggled), 0},
		{"TE with space before the colon", post("Transfer-Encoding : chunked\r\nContent-Length: 6\r\n", "0\r\n\r\n"+smuggled), 0},
		{"duplicate differing Content-Length", post("Content-Length: 6\r\nContent-Length: 0\r\n", "abcdef"), 0},
		{"Content-Length list", post("Content-Length: 6, 0\r\n", "abcdef"), 0},
		{"signed Content-Length", post("Content-Length: +6\r\n", "abcdef"), 0},
		{"negative Content-Length", post("Content-Length: -1\r\n", ""), 0},
		{"hex Content-Length", post("Content-Length: 0x6\r\n", "abcdef"), 0},
		{"empty Content-Length", post("Content-Length: \r\n", ""), 0},
		{"space before the colon", post("Content-Length : 6\r\n", "abcdef"), 0},
		{"bare LF line endings", "POST /x HTTP/1.1\nHost: test\nContent-Length: 0\n\n", 0},
		{"bare CR in a field", post("X-A: a\rTransfer-Encoding: chunked\r\n", ""), 0},
		{"obs-fold", post("X-A: a\r\n  folded\r\nContent-Length: 0\r\n", ""), 0},
		{"NUL in a value", post("X-A: a\x00b\r\nContent-Length: 0\r\n", ""), 0},
		{"oversized chunk size", post("Transfer-Encoding: chunked\r\n", "fffffffffffffffff1\r\nabc\r\n0\r\n\r\n"), 0},
		{"chunk-extension flood", post("Transfer-Encoding: chunked\r\n", "1;"+strings.Repeat("a=b;", 4096)+"\r\nx\r\n0\r\n\r\n"), 0},
		{"Content-Length smuggled in trailers", post("Transfer-Encoding: chunked\r\n", "1\r\nx\r\n0\r\nContent-Length: 40\r\n\r\n"+smuggled), 0},
		{"Host smuggled in trailers", post("Transfer-Encoding: chunked\r\n", "1\r\nx\r\n0\r\nHost: internal\r\n\r\n"), 0},
		{"absolute-form URI whose host differs from Host", "GET http://internal.example/admin HTTP/1.1\r\nHost: test\r\n\r\n", 0},
		{"two Host headers", "GET /x HTTP/1.1\r\nHost: test\r\nHost: internal.example\r\n\r\n", 0},
		{"no Host on HTTP/1.1", "GET /x HTTP/1.1\r\n\r\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			want := tc.want
			if want == 0 {
				want = 400
			}
			before := hits.Load()
			resp, body, closed := rawExchange(t, public, tc.raw, want != 200)
			if want == 200 {
				if resp.StatusCode != 200 || hits.Load()-before != 1 || body != "uri=/x" {
					t.Fatalf("status %d, body %q, %d upstream requests; want one normalised request", resp.StatusCode, body, hits.Load()-before)
				}
				return
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d (%s) %q, want %d", resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"), body, want)
			}
			if resp.Header.Get("X-Meshgate-Reason") == "" {
				t.Errorf("the refusal carries no reason code")
			}
			if !closed {
				t.Errorf("the connection stayed open after a framing error: a smuggled request could follow")
			}
			if n := hits.Load() - before; n != 0 {
				t.Fatalf("the upstream received %d requests", n)
			}
		})
	}
}
