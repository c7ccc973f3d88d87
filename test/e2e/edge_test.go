package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw to a new connection to addr and reads one response. It also reports
// whether the server closed the connection after that response (read until EOF, bounded), when
// checkClose is set.
func rawExchange(t *testing.T, addr, raw string, checkClose bool) (resp *http.Response, body string, closed bool) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, requestTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", firstLine(raw), err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	_ = resp.Body.Close()
	if !checkClose {
		return resp, string(b), false
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, err := br.Read(make([]byte, 1))
	closed = n == 0 && err != nil && !isTimeout(err)
	return resp, string(b), closed
}

// firstLine returns the request line of a raw request, for messages.
func firstLine(raw string) string {
	l, _, _ := strings.Cut(raw, "\r\n")
	return l
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestEdgeSafety sends malformed and oversized requests over raw connections and checks that
// meshgate refuses each with the documented status and reason, and that paths are normalised
// before they reach the upstream.
func TestEdgeSafety(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "uri="+r.RequestURI)
	}))
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - name: public
    address: "{{PUBLIC}}"
    limits: {maxHeaderBytes: 4096, maxBodyBytes: 1024}
routes:
  - name: app
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	cases := []struct {
		desc       string
		raw        string
		status     int
		reason     string
		mustClose  bool
		wantUpBody string
	}{
		{
			desc:      "Content-Length with Transfer-Encoding",
			raw:       "POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status:    400,
			mustClose: true,
		},
		{
			desc:      "head larger than maxHeaderBytes",
			raw:       "GET /x HTTP/1.1\r\nHost: test\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n",
			status:    431,
			reason:    "header_too_large",
			mustClose: true,
		},
		{
			desc:   "Content-Length larger than maxBodyBytes",
			raw:    "POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("b", 2000),
			status: 413,
			reason: "body_too_large",
		},
		{
			desc: "chunked body larger than maxBodyBytes",
			raw: "POST /x HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"400\r\n" + strings.Repeat("c", 1024) + "\r\n400\r\n" + strings.Repeat("c", 1024) + "\r\n0\r\n\r\n",
			status: 413,
			reason: "body_too_large",
		},
		{
			desc:   "encoded slash",
			raw:    "GET /a%2Fb HTTP/1.1\r\nHost: test\r\n\r\n",
			status: 400,
			reason: "bad_path",
		},
		{
			desc:   "encoded backslash",
			raw:    "GET /a%5Cb HTTP/1.1\r\nHost: test\r\n\r\n",
			status: 400,
			reason: "bad_path",
		},
		{
			desc:      "more header fields than maxHeaderCount",
			raw:       "GET /x HTTP/1.1\r\nHost: test\r\n" + manyFields(150) + "\r\n",
			status:    431,
			mustClose: true,
		},
		{
			desc:       "unreserved escapes decoded",
			raw:        "GET /a/./b/%7Euser HTTP/1.1\r\nHost: test\r\n\r\n",
			status:     200,
			wantUpBody: "uri=/a/b/~user",
		},
		{
			desc:       "merged slashes and dot segments",
			raw:        "GET //admin/../admin HTTP/1.1\r\nHost: test\r\n\r\n",
			status:     200,
			wantUpBody: "uri=/admin",
		},
		{
			desc:       "body within the limit",
			raw:        "POST /ok HTTP/1.1\r\nHost: test\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("d", 1024),
			status:     200,
			wantUpBody: "uri=/ok",
		},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body, closed := rawExchange(t, public, tc.raw, tc.mustClose)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			if got := resp.Header.Get("X-Meshgate-Reason"); tc.reason != "" && got != tc.reason {
				t.Errorf("X-Meshgate-Reason %q, want %q", got, tc.reason)
			}
			if tc.status >= 400 && resp.Header.Get("X-Meshgate-Reason") == "" {
				t.Errorf("a response meshgate made carries no X-Meshgate-Reason")
			}
			if tc.mustClose && !closed {
				t.Errorf("the connection stayed open after a %d", tc.status)
			}
			if tc.wantUpBody != "" && body != tc.wantUpBody {
				t.Errorf("upstream answered %q, want %q", body, tc.wantUpBody)
			}
		})
	}

	// The same path rules hold for HTTP/2 requests.
	for _, tc := range []struct {
		path, reason, body string
		status             int
	}{
		{"/a%2Fb", "bad_path", "", 400},
		{"//admin/../admin", "", "uri=/admin", 200},
	} {
		t.Run("HTTP/2 "+tc.path, func(t *testing.T) {
			t.Parallel()
			r := runCurl(t, "--http2-prior-knowledge", "--path-as-is", "http://"+public+tc.path)
			if r.Version != "2" || r.Status != tc.status {
				t.Fatalf("got %d over HTTP/%s, want %d over HTTP/2 (body %q)", r.Status, r.Version, tc.status, r.Body)
			}
			if got := r.Header.Get("X-Meshgate-Reason"); got != tc.reason {
				t.Errorf("X-Meshgate-Reason %q, want %q", got, tc.reason)
			}
			if tc.body != "" && r.Body != tc.body {
				t.Errorf("upstream answered %q, want %q", r.Body, tc.body)
			}
		})
	}
}

// manyFields returns n distinct header fields, CRLF-terminated.
func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "X-Field-%d: v\r\n", i)
	}
	return b.String()
}
