package http1

import (
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestAppendRequestHead(t *testing.T) {
	tests := []struct {
		desc string
		req  httpmsg.Request
		want string
	}{
		{"origin-form with query", httpmsg.Request{Method: "GET", Path: "/a", Query: "b=c", Host: "example.com",
			Header: httpmsg.Header{{Name: "Accept", Value: "*/*"}, {Name: "X-A", Value: ""}}},
			"GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nX-A: \r\n\r\n"},
		{"empty path", httpmsg.Request{Method: "GET", Host: "example.com"}, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"},
		{"Host fields in Header are skipped", httpmsg.Request{Method: "GET", Path: "/", Host: "a.example",
			Header: httpmsg.Header{{Name: "host", Value: "b.example"}, {Name: "X", Value: "1"}}},
			"GET / HTTP/1.1\r\nHost: a.example\r\nX: 1\r\n\r\n"},
		{"no Host", httpmsg.Request{Method: "GET", Path: "/"}, "GET / HTTP/1.1\r\n\r\n"},
		{"CONNECT", httpmsg.Request{Method: "CONNECT", Target: "example.com:443", Host: "example.com:443"},
			"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"},
		{"OPTIONS *", httpmsg.Request{Method: "OPTIONS", Path: "*", Host: "example.com"},
			"OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got := string(AppendRequestHead([]byte("prefix"), &tt.req))
			if got != "prefix"+tt.want {
				t.Fatalf("got  %q\nwant %q", got, "prefix"+tt.want)
			}
		})
	}
}

func TestAppendResponseHead(t *testing.T) {
	tests := []struct {
		desc string
		resp httpmsg.Response
		want string
	}{
		{"standard reason", httpmsg.Response{Status: 404, Header: httpmsg.Header{{Name: "Content-Length", Value: "0"}}},
			"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"},
		{"given reason", httpmsg.Response{Status: 200, Reason: "Fine"}, "HTTP/1.1 200 Fine\r\n\r\n"},
		{"unknown code", httpmsg.Response{Status: 599}, "HTTP/1.1 599 \r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := string(AppendResponseHead(nil, &tt.resp)); got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAppendAllocs(t *testing.T) {
	var req httpmsg.Request
	if _, err := ParseRequest([]byte(benchRequest), Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	var resp httpmsg.Response
	if _, err := ParseResponse([]byte(benchResponse), Limits{}, "GET", &resp); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 0, 2048)
	if a := testing.AllocsPerRun(100, func() { dst = AppendRequestHead(dst[:0], &req) }); a != 0 {
		t.Errorf("AppendRequestHead: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { dst = AppendResponseHead(dst[:0], &resp) }); a != 0 {
		t.Errorf("AppendResponseHead: %v allocs", a)
	}
}

func TestRoundTripRequest(t *testing.T) {
	in := "POST http://example.com/up?x HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
	var a, b httpmsg.Request
	if _, err := ParseRequest([]byte(in), Limits{}, &a); err != nil {
		t.Fatal(err)
	}
	out := AppendRequestHead(nil, &a)
	if want := "POST /up?x HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"; string(out) != want {
		t.Fatalf("got %q", out)
	}
	if _, err := ParseRequest(out, Limits{}, &b); err != nil {
		t.Fatal(err)
	}
	if a.Path != b.Path || a.Query != b.Query || a.Host != b.Host || !reflect.DeepEqual(a.Header, b.Header) || !b.Chunked {
		t.Fatalf("round trip changed the request:\n%+v\n%+v", a, b)
	}
}

func TestStatusText(t *testing.T) {
	for code, want := range map[int]string{200: "OK", 431: "Request Header Fields Too Large", 505: "HTTP Version Not Supported", 299: ""} {
		if got := StatusText(code); got != want {
			t.Errorf("StatusText(%d) = %q, want %q", code, got, want)
		}
	}
}
