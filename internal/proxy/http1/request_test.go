package http1

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// reqWant is the expected outcome of ParseRequest: either reason (and status) of the error, or the
// parsed request fields.
type reqWant struct {
	reason string // "" for success; "incomplete" for ErrIncomplete
	status int    // checked when non-zero

	method, target, path, query, host string
	proto                             httpmsg.Proto
	header                            httpmsg.Header // checked when non-nil
	cl                                int64
	chunked, close, expect100         bool
	upgrade                           string
}

func TestParseRequest(t *testing.T) {
	get := func(target string) string { return "GET " + target + " HTTP/1.1\r\nHost: example.com\r\n\r\n" }
	post := func(fields string) string {
		return "POST /upload HTTP/1.1\r\nHost: example.com\r\n" + fields + "\r\n"
	}
	ok := func(w reqWant) reqWant {
		if w.method == "" {
			w.method = "GET"
		}
		if w.proto == 0 {
			w.proto = httpmsg.HTTP11
		}
		if w.host == "" {
			w.host = "example.com"
		}
		return w
	}
	okPost := func(cl int64, chunked bool) reqWant {
		return ok(reqWant{method: "POST", target: "/upload", path: "/upload", cl: cl, chunked: chunked})
	}
	fail := func(reason string, status int) reqWant { return reqWant{reason: reason, status: status} }

	tests := []struct {
		desc string
		in   string
		lim  Limits
		want reqWant
	}{
		// Good requests.
		{"simple GET", get("/"), Limits{}, ok(reqWant{target: "/", path: "/", header: httpmsg.Header{}})},
		{"path and query", get("/a/b?x=1&y=%20"), Limits{}, ok(reqWant{target: "/a/b?x=1&y=%20", path: "/a/b", query: "x=1&y=%20"})},
		{"empty query", get("/a?"), Limits{}, ok(reqWant{target: "/a?", path: "/a"})},
		{"raw UTF-8 in target", get("/странные"), Limits{}, ok(reqWant{target: "/странные", path: "/странные"})},
		{"typical browser GET",
			"GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n" +
				"Accept-Encoding: gzip, br\r\nCookie: a=b; c=d\r\nX-Request-Id: 42\r\n\r\n",
			Limits{}, ok(reqWant{target: "/index.html", path: "/index.html", host: "www.example.com", header: httpmsg.Header{
				{Name: "User-Agent", Value: "curl/8.0"}, {Name: "Accept", Value: "*/*"},
				{Name: "Accept-Encoding", Value: "gzip, br"}, {Name: "Cookie", Value: "a=b; c=d"},
				{Name: "X-Request-Id", Value: "42"},
			}})},
		{"OWS trimmed, name case kept, empty value",
			"GET / HTTP/1.1\r\nhost:example.com\r\nX-A: \t v  w \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n",
			Limits{}, ok(reqWant{target: "/", path: "/", header: httpmsg.Header{
				{Name: "X-A", Value: "v  w"}, {Name: "X-Empty", Value: ""}, {Name: "X-Sp", Value: ""},
			}})},
		{"obs-text and HTAB in value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: caf\xc3\xa9\tok\r\n\r\n",
			Limits{}, ok(reqWant{target: "/", path: "/", header: httpmsg.Header{{Name: "X-A", Value: "caf\xc3\xa9\tok"}}})},
		{"all tchars in name", "GET / HTTP/1.1\r\nHost: example.com\r\nA.!#$%&'*+^_`|~09: v\r\n\r\n",
			Limits{}, ok(reqWant{target: "/", path: "/", header: httpmsg.Header{{Name: "A.!#$%&'*+^_`|~09", Value: "v"}}})},
		{"Content-Length", post("Content-Length: 5\r\n"), Limits{}, okPost(5, false)},
		{"Content-Length with OWS", post("Content-Length:\t 5 \t\r\n"), Limits{}, okPost(5, false)},
		{"Content-Length leading zeros", post("Content-Length: 007\r\n"), Limits{}, okPost(7, false)},
		{"Content-Length max int64", post("Content-Length: 9223372036854775807\r\n"), Limits{}, okPost(1<<63-1, false)},
		{"chunked", post("Transfer-Encoding: chunked\r\n"), Limits{}, okPost(-1, true)},
		{"chunked any case", post("TRANSFER-ENCODING: ChUnKeD\r\n"), Limits{}, okPost(-1, true)},
		{"chunked after HTAB", post("Transfer-Encoding:\tchunked\r\n"), Limits{}, okPost(-1, true)},
		{"chunked with trailing OWS", post("Transfer-Encoding: chunked \t\r\n"), Limits{}, okPost(-1, true)},
		{"HTTP/1.0 closes by default, Host optional", "GET / HTTP/1.0\r\n\r\n", Limits{},
			reqWant{method: "GET", target: "/", path: "/", proto: httpmsg.HTTP10, close: true}},
		{"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: example.com\r\n\r\n", Limits{},
			reqWant{method: "GET", target: "/", path: "/", host: "example.com", proto: httpmsg.HTTP10}},
		{"Connection: close", "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, close\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/", close: true})},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", Limits{},
			ok(reqWant{target: "/ws", path: "/ws", upgrade: "websocket"})},
		{"Upgrade without Connection option is ignored", "GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/"})},
		{"expect 100-continue", "PUT /x HTTP/1.1\r\nHost: example.com\r\nExpect: 100-Continue\r\nContent-Length: 10\r\n\r\n", Limits{},
			ok(reqWant{method: "PUT", target: "/x", path: "/x", cl: 10, expect100: true})},
		{"Host is moved out of Header", "GET / HTTP/1.1\r\nX-A: 1\r\nHost: example.com\r\nX-B: 2\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/", header: httpmsg.Header{{Name: "X-A", Value: "1"}, {Name: "X-B", Value: "2"}}})},
		{"Host IPv6 with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/", host: "[::1]:8080"})},
		{"Host IPv4 with port", "GET / HTTP/1.1\r\nHost: 10.0.0.1:80\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/", host: "10.0.0.1:80"})},
		{"absolute-form", "GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{},
			ok(reqWant{target: "http://example.com/a?b=c", path: "/a", query: "b=c"})},
		{"absolute-form without path", "GET HTTPS://Example.com:8443 HTTP/1.1\r\nHost: example.com:8443\r\n\r\n", Limits{},
			ok(reqWant{target: "HTTPS://Example.com:8443", path: "/", host: "Example.com:8443"})},
		{"absolute-form query without path", "GET http://example.com?q HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{},
			ok(reqWant{target: "http://example.com?q", path: "/", query: "q"})},
		{"absolute-form HTTP/1.0 without Host", "GET http://example.com/ HTTP/1.0\r\n\r\n", Limits{},
			reqWant{method: "GET", target: "http://example.com/", path: "/", host: "example.com", proto: httpmsg.HTTP10, close: true}},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{},
			ok(reqWant{method: "OPTIONS", target: "*", path: "*"})},
		{"OPTIONS absolute-form without path", "OPTIONS http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{},
			ok(reqWant{method: "OPTIONS", target: "http://example.com", path: "*"})},
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", Limits{},
			ok(reqWant{method: "CONNECT", target: "example.com:443", host: "example.com:443"})},
		{"CONNECT IPv6", "CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", Limits{},
			ok(reqWant{method: "CONNECT", target: "[2001:db8::1]:443", host: "[2001:db8::1]:443"})},
		{"leading empty lines skipped", "\r\n\r\n" + get("/"), Limits{}, ok(reqWant{target: "/", path: "/"})},
		{"GET with Content-Length 0", "GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n", Limits{},
			ok(reqWant{target: "/", path: "/"})},
		{"GET body allowed by Limits", "GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\n", Limits{AllowGetBody: true},
			ok(reqWant{target: "/", path: "/", cl: 3})},
		{"extension method", "PURGE /x HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{},
			ok(reqWant{method: "PURGE", target: "/x", path: "/x"})},
		{"field count at the limit", get("/")[:len(get("/"))-2] + "A: 1\r\nB: 2\r\n\r\n", Limits{MaxHeaderCount: 3},
			ok(reqWant{target: "/", path: "/"})},
		{"head exactly MaxHeaderBytes", get("/"), Limits{MaxHeaderBytes: len(get("/"))}, ok(reqWant{target: "/", path: "/"})},

		// Incomplete heads.
		{"empty", "", Limits{}, fail("incomplete", 0)},
		{"only empty lines", "\r\n\r\n", Limits{}, fail("incomplete", 0)},
		{"partial request line", "GET / HT", Limits{}, fail("incomplete", 0)},
		{"partial header", "GET / HTTP/1.1\r\nHost: exa", Limits{}, fail("incomplete", 0)},
		{"missing final CRLF", "GET / HTTP/1.1\r\nHost: example.com\r\n", Limits{}, fail("incomplete", 0)},
		{"half final CRLF", "GET / HTTP/1.1\r\nHost: example.com\r\n\r", Limits{}, fail("incomplete", 0)},

		// Framing attacks.
		{"CL and TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE and CL", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE xchunked", post("Transfer-Encoding: xchunked\r\n"), Limits{}, fail(ReasonUnsupportedTransferCoding, 501)},
		{"TE chunk", post("Transfer-Encoding: chunk\r\n"), Limits{}, fail(ReasonUnsupportedTransferCoding, 501)},
		{"TE identity", post("Transfer-Encoding: identity\r\n"), Limits{}, fail(ReasonUnsupportedTransferCoding, 501)},
		{"TE gzip, chunked", post("Transfer-Encoding: gzip, chunked\r\n"), Limits{}, fail(ReasonUnsupportedTransferCoding, 501)},
		{"TE chunked, identity", post("Transfer-Encoding: chunked, identity\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE chunked with parameter", post("Transfer-Encoding: chunked;q=1\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE empty", post("Transfer-Encoding:\r\n"), Limits{}, fail(ReasonBadTransferEncoding, 400)},
		{"TE empty list element", post("Transfer-Encoding: , chunked\r\n"), Limits{}, fail(ReasonBadTransferEncoding, 400)},
		{"TE quoted", post("Transfer-Encoding: \"chunked\"\r\n"), Limits{}, fail(ReasonBadTransferEncoding, 400)},
		{"TE vertical tab before", post("Transfer-Encoding:\x0bchunked\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"TE vertical tab after", post("Transfer-Encoding: chunked\x0b\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"TE form feed", post("Transfer-Encoding: \x0cchunked\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"TE NBSP", post("Transfer-Encoding: \xa0chunked\r\n"), Limits{}, fail(ReasonBadTransferEncoding, 400)},
		{"duplicate TE", post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"CL signed +", post("Content-Length: +5\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL signed -", post("Content-Length: -5\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL hex", post("Content-Length: 0x5\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL empty", post("Content-Length:\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL list", post("Content-Length: 5, 5\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL inner space", post("Content-Length: 5 5\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL decimal point", post("Content-Length: 5.0\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL overflow", post("Content-Length: 9223372036854775808\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL 64-bit overflow", post("Content-Length: 18446744073709551616\r\n"), Limits{}, fail(ReasonBadContentLength, 400)},
		{"CL duplicate identical", post("Content-Length: 5\r\nContent-Length: 5\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"CL duplicate different", post("Content-Length: 5\r\nContent-Length: 6\r\n"), Limits{}, fail(ReasonAmbiguousFraming, 400)},
		{"Transfer_Encoding lookalike", post("Transfer_Encoding: chunked\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"Content---Length lookalike", post("Content---Length: 5\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"GET with Content-Length", "GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\n", Limits{}, fail(ReasonBodyNotAllowed, 400)},
		{"HEAD chunked", "HEAD / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n", Limits{}, fail(ReasonBodyNotAllowed, 400)},

		// Field syntax attacks.
		{"space before colon", post("Content-Length : 5\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"tab before colon", post("Transfer-Encoding\t: chunked\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"space inside name", post("Transfer- Encoding: chunked\r\n"), Limits{}, fail(ReasonBadHeader, 400)},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n 2\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"obs-fold with tab", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\t2\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"leading white space on first field line", "GET / HTTP/1.1\r\n Host: example.com\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"bare LF ends a field line", "GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"bare LF ends the request line", "GET / HTTP/1.1\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"bare LF head, fails before complete", "GET / HTTP/1.1\nHost: example.com\n\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"bare LF in headers, fails before complete", "GET / HTTP/1.1\r\nHost: example.com\n\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\rTransfer-Encoding: chunked\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"bare CR ends a field line", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a\x00b\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"NUL at end of long value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 0123456789abcdef\x00\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"DEL in value", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 0123456789\x7f\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: example.com\r\nX-\x00A: 1\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"non-ASCII in name", "GET / HTTP/1.1\r\nHost: example.com\r\nTran\xc5\xbffer-Encoding: chunked\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"empty name", "GET / HTTP/1.1\r\nHost: example.com\r\n: x\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},
		{"no colon", "GET / HTTP/1.1\r\nHost: example.com\r\nX-A\r\n\r\n", Limits{}, fail(ReasonBadHeader, 400)},

		// Request line.
		{"invalid method char", "GE(T / HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"method with CTL", "GET\x01 / HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"leading space", " GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"double space", "GET  / HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"tab in target", "GET /a\tb HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"NUL in target", "GET /a\x00 HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"DEL in long target", "GET /0123456789abcdef\x7f HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"asterisk outside OPTIONS", "GET * HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"authority-form outside CONNECT", "GET example.com:80 HTTP/1.1\r\nHost: example.com:80\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"CONNECT Host disagrees", "CONNECT a.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"absolute-form other scheme", "GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"absolute-form userinfo", "GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"absolute-form empty authority", "GET http:/// HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"absolute-form with different Host", "GET http://internal.example/admin HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonUnsupportedVersion, 505)},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonUnsupportedVersion, 505)},
		{"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", Limits{}, fail(ReasonUnsupportedVersion, 505)},
		{"lowercase version", "GET / http/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"version garbage", "GET / HTTP/11\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"space after version", "GET / HTTP/1.1 \r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"no version", "GET /\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},
		{"smuggled request line", "GET /a\tHTTP/1.1\r\nHost: x\r\n\r\nGET\t/b HTTP/1.1\r\nHost: example.com\r\n\r\n", Limits{}, fail(ReasonBadRequestLine, 400)},

		// Host.
		{"missing Host", "GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"two Host fields", "GET / HTTP/1.1\r\nHost: example.com\r\nHost: evil.example\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"two identical Host fields", "GET / HTTP/1.1\r\nHost: example.com\r\nhost: example.com\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host with space", "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host with path", "GET / HTTP/1.1\r\nHost: example.com/a\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@example.com\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host empty port", "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host port too big", "GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host bad IPv6", "GET / HTTP/1.1\r\nHost: [::g]\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host unterminated IPv6", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},
		{"Host list", "GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", Limits{}, fail(ReasonBadHost, 400)},

		// Limits.
		{"too many fields", get("/")[:len(get("/"))-2] + "A: 1\r\nB: 2\r\nC: 3\r\n\r\n", Limits{MaxHeaderCount: 3}, fail(ReasonTooManyHeaders, 431)},
		{"head too large, complete", get("/"), Limits{MaxHeaderBytes: len(get("/")) - 1}, fail(ReasonHeaderTooLarge, 431)},
		{"head too large, incomplete", "GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 100), Limits{MaxHeaderBytes: 64}, fail(ReasonHeaderTooLarge, 431)},
		{"endless empty lines", strings.Repeat("\r\n", 40), Limits{MaxHeaderBytes: 64}, fail(ReasonHeaderTooLarge, 431)},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			var req httpmsg.Request
			n, err := ParseRequest([]byte(tt.in), tt.lim, &req)
			checkParse(t, tt.in, n, err, tt.want.reason, tt.want.status)
			if err != nil || tt.want.reason != "" {
				return
			}
			w := tt.want
			got := reqWant{method: req.Method, target: req.Target, path: req.Path, query: req.Query, host: req.Host,
				proto: req.Proto, cl: req.ContentLength, chunked: req.Chunked, close: req.Close,
				expect100: req.Expect100, upgrade: req.Upgrade}
			if w.header != nil {
				got.header = req.Header
				if len(got.header) == 0 && len(w.header) == 0 {
					got.header = w.header
				}
			}
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}
}

// checkParse checks the error (or head length) of a parse against the wanted reason and status.
func checkParse(t *testing.T, in string, n int, err error, reason string, status int) {
	t.Helper()
	switch reason {
	case "":
		if err != nil {
			t.Fatalf("%q: unexpected error %v", in, err)
		}
		if n != len(in) {
			t.Fatalf("%q: n = %d, want %d", in, n, len(in))
		}
	case "incomplete":
		if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("%q: err = %v, want ErrIncomplete", in, err)
		}
	default:
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("%q: err = %v, want *ParseError %s", in, err, reason)
		}
		if pe.Reason != reason || (status != 0 && pe.Status != status) {
			t.Fatalf("%q: got %d %s (%s), want %d %s", in, pe.Status, pe.Reason, pe.Msg, status, reason)
		}
		if n != 0 {
			t.Fatalf("n = %d on error", n)
		}
	}
}

// Heads with more fields than the syntax pass records take the re-split path.
func TestParseRequestManyFields(t *testing.T) {
	var in strings.Builder
	in.WriteString("POST / HTTP/1.1\r\n")
	var want httpmsg.Header
	for i := range spanCap + 9 {
		name := "X-F" + strings.Repeat("a", i%5) + string(rune('A'+i%26))
		value := strings.Repeat("v", i%7)
		in.WriteString(name + ":" + strings.Repeat(" \t", i%3) + value + strings.Repeat("\t ", i%2) + "\r\n")
		want = append(want, httpmsg.Field{Name: name, Value: value})
		if i == 20 {
			in.WriteString("Host: example.com\r\nContent-Length: 7\r\n")
			want = append(want, httpmsg.Field{Name: "Content-Length", Value: "7"})
		}
	}
	in.WriteString("\r\n")
	var req httpmsg.Request
	if _, err := ParseRequest([]byte(in.String()), Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(req.Header, want) || req.Host != "example.com" || req.ContentLength != 7 {
		t.Fatalf("got %v %q %d", req.Header, req.Host, req.ContentLength)
	}
	// And the limits still apply there.
	if _, err := ParseRequest([]byte(in.String()), Limits{MaxHeaderCount: spanCap + 5}, &req); err == nil {
		t.Fatal("too many fields accepted")
	}
}

func TestParseRequestBodyOffset(t *testing.T) {
	in := []byte("POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n")
	var req httpmsg.Request
	n, err := ParseRequest(in, Limits{}, &req)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(in[n : n+5]); got != "hello" {
		t.Fatalf("body = %q", got)
	}
}

func TestParseRequestDoesNotAlias(t *testing.T) {
	in := []byte("GET /path?q HTTP/1.1\r\nHost: example.com\r\nX-A: value\r\n\r\n")
	var req httpmsg.Request
	if _, err := ParseRequest(in, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'Z'
	}
	if req.Method != "GET" || req.Path != "/path" || req.Query != "q" || req.Host != "example.com" ||
		req.Header[0].Name != "X-A" || req.Header[0].Value != "value" {
		t.Fatalf("parsed request changed with the buffer: %+v", req)
	}
}

func TestParseRequestReusesHeader(t *testing.T) {
	long := []byte("GET / HTTP/1.1\r\nHost: example.com\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n")
	short := []byte("GET / HTTP/1.1\r\nHost: example.com\r\nD: 4\r\n\r\n")
	var req httpmsg.Request
	if _, err := ParseRequest(long, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	first := &req.Header[0]
	if _, err := ParseRequest(short, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	if &req.Header[0] != first {
		t.Fatal("Header backing array was not reused")
	}
	if len(req.Header) != 1 || req.Header[0].Name != "D" {
		t.Fatalf("Header = %v", req.Header)
	}
	if tail := req.Header[:3]; tail[1] != (httpmsg.Field{}) || tail[2] != (httpmsg.Field{}) {
		t.Fatalf("stale fields kept: %v", tail)
	}
	// A failed parse leaves no stale framing behind.
	if _, err := ParseRequest([]byte("GET / HTTP/1.1\r\nHost: example.com\r\nContent-Length: x\r\n\r\n"), Limits{}, &req); err == nil {
		t.Fatal("want error")
	}
	if req.ContentLength != 0 || req.Chunked {
		t.Fatalf("framing left set after error: %+v", req)
	}
}

func TestParseRequestAllocs(t *testing.T) {
	in := []byte(benchRequest)
	var req httpmsg.Request
	if _, err := ParseRequest(in, Limits{}, &req); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseRequest(in, Limits{}, &req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("ParseRequest into a reused Request: %v allocs, want 1", allocs)
	}
}

// Every prefix of a valid head is incomplete, never an error.
func TestParseRequestPrefixes(t *testing.T) {
	in := []byte("\r\nPOST http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nX: y\r\n\r\n")
	var req httpmsg.Request
	for i := 0; i < len(in); i++ {
		if _, err := ParseRequest(in[:i], Limits{}, &req); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix %q: %v", in[:i], err)
		}
	}
	if n, err := ParseRequest(in, Limits{}, &req); err != nil || n != len(in) {
		t.Fatalf("full: %d %v", n, err)
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := ParseRequest([]byte("GET / HTTP/1.1\r\n\r\n"), Limits{}, &httpmsg.Request{})
	if got := err.Error(); got != "http1: missing Host field (bad_host)" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestValidField(t *testing.T) {
	for _, tt := range []struct {
		desc, name, value string
		nameOK, valueOK   bool
	}{
		{"plain", "X-A", "b c", true, true},
		{"empty value", "X-A", "", true, true},
		{"obs-text", "X-A", "\xff", true, true},
		{"CRLF injection", "X-A", "a\r\nX-B: c", true, false},
		{"NUL", "X-A", "a\x00", true, false},
		{"leading space", "X-A", " a", true, false},
		{"trailing tab", "X-A", "a\t", true, false},
		{"empty name", "", "a", false, true},
		{"colon in name", "X:A", "a", false, true},
		{"space in name", "X A", "a", false, true},
	} {
		if got := ValidFieldName(tt.name); got != tt.nameOK {
			t.Errorf("%s: ValidFieldName(%q) = %v", tt.desc, tt.name, got)
		}
		if got := ValidFieldValue(tt.value); got != tt.valueOK {
			t.Errorf("%s: ValidFieldValue(%q) = %v", tt.desc, tt.value, got)
		}
	}
}
