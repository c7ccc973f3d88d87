package http1

import (
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestParseResponse(t *testing.T) {
	type want struct {
		reason string // "" for success, "incomplete", or the error reason (status is always 502)

		status  int
		phrase  string
		proto   httpmsg.Proto
		header  httpmsg.Header // checked when non-nil
		cl      int64
		chunked bool
		close   bool
	}
	ok := func(status int, phrase string, cl int64, chunked, close bool) want {
		return want{status: status, phrase: phrase, proto: httpmsg.HTTP11, cl: cl, chunked: chunked, close: close}
	}
	fail := func(reason string) want { return want{reason: reason} }
	tests := []struct {
		desc   string
		in     string
		method string
		want   want
	}{
		{"Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", "GET", ok(200, "OK", 12, false, false)},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", ok(200, "OK", -1, true, false)},
		{"close-delimited", "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\n", "GET", want{status: 200, phrase: "OK", proto: httpmsg.HTTP11,
			header: httpmsg.Header{{Name: "X-A", Value: "1"}}, cl: -1, close: true}},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "GET", ok(200, "OK", 0, false, true)},
		{"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", "GET", want{status: 200, phrase: "OK", proto: httpmsg.HTTP10, cl: 1, close: true}},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n", "GET", want{status: 200, phrase: "OK", proto: httpmsg.HTTP10, cl: 1}},
		{"HEAD ignores Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", "HEAD", ok(200, "OK", 0, false, false)},
		{"HEAD ignores chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HEAD", ok(200, "OK", 0, false, false)},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", "GET", ok(204, "No Content", 0, false, false)},
		{"304 with Content-Length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", "GET", ok(304, "Not Modified", 0, false, false)},
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", "POST", ok(100, "Continue", 0, false, false)},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", ok(101, "Switching Protocols", 0, false, false)},
		{"CONNECT 200 is a tunnel", "HTTP/1.1 200 Connection Established\r\n\r\n", "CONNECT", ok(200, "Connection Established", 0, false, false)},
		{"CONNECT 407 has a body", "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", "CONNECT", ok(407, "Auth", 3, false, false)},
		{"no reason phrase", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", "GET", ok(200, "", 0, false, false)},
		{"no SP before empty reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", ok(200, "", 0, false, false)},
		{"reason with spaces and obs-text", "HTTP/1.1 599 Very \xc3\xa9 Odd\r\nContent-Length: 0\r\n\r\n", "GET", ok(599, "Very \xc3\xa9 Odd", 0, false, false)},

		{"incomplete", "HTTP/1.1 200 OK\r\nContent-Le", "GET", fail("incomplete")},
		{"leading empty line", "\r\nHTTP/1.1 200 OK\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", "GET", fail(ReasonUnsupportedVersion)},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"status below 100", "HTTP/1.1 099 OK\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", "GET", fail(ReasonBadStatusLine)},
		{"bare LF status line", "HTTP/1.1 200 OK\n\n", "GET", fail(ReasonBadStatusLine)},
		{"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", fail(ReasonAmbiguousFraming)},
		{"two CL", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "GET", fail(ReasonAmbiguousFraming)},
		{"bad CL", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "GET", fail(ReasonBadContentLength)},
		{"TE gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "GET", fail(ReasonUnsupportedTransferCoding)},
		{"TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", fail(ReasonAmbiguousFraming)},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", "GET", fail(ReasonBadHeader)},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\n\r\n", "GET", fail(ReasonBadHeader)},
		{"Host is an ordinary field", "HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nContent-Length: 0\r\n\r\n", "GET",
			want{status: 200, phrase: "OK", proto: httpmsg.HTTP11, header: httpmsg.Header{{Name: "Host", Value: "a"}, {Name: "Host", Value: "b"},
				{Name: "Content-Length", Value: "0"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var resp httpmsg.Response
			n, err := ParseResponse([]byte(tt.in), Limits{}, tt.method, &resp)
			status := 0
			if tt.want.reason != "" && tt.want.reason != "incomplete" {
				status = 502
			}
			checkParse(t, tt.in, n, err, tt.want.reason, status)
			if err != nil || tt.want.reason != "" {
				return
			}
			got := want{status: resp.Status, phrase: resp.Reason, proto: resp.Proto, cl: resp.ContentLength,
				chunked: resp.Chunked, close: resp.Close}
			if tt.want.header != nil {
				got.header = resp.Header
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseResponseAllocs(t *testing.T) {
	in := []byte(benchResponse)
	var resp httpmsg.Response
	if _, err := ParseResponse(in, Limits{}, "GET", &resp); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseResponse(in, Limits{}, "GET", &resp); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("ParseResponse into a reused Response: %v allocs, want 1", allocs)
	}
}
