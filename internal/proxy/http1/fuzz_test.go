package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

var fuzzRequestSeeds = []string{
	benchRequest,
	"GET / HTTP/1.0\r\n\r\n",
	"POST /a?b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
	"GET http://example.com/a?b HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n 2\r\n\r\n",
	"GET / HTTP/1.1\nHost: example.com\n\n",
	"\r\nGET /a? HTTP/1.1\r\nhost: e\r\nConnection: close\r\n\r\n",
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzRequestSeeds {
		f.Add([]byte(s))
	}
	for _, cases := range loadCorpus(f) {
		for _, c := range cases {
			f.Add(c.raw())
		}
	}
	lim := Limits{MaxHeaderBytes: 4096, MaxHeaderCount: 32}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req httpmsg.Request
		n, err := ParseRequest(data, lim, &req)
		if err != nil {
			checkFuzzError(t, n, err, 400, 431, 501, 505)
			return
		}
		if n <= 0 || n > len(data) || n > lim.MaxHeaderBytes {
			t.Fatalf("n = %d for %d bytes", n, len(data))
		}
		checkMessage(t, req.Header, req.ContentLength, req.Chunked)
		if req.Chunked && req.Proto != httpmsg.HTTP11 {
			t.Fatal("chunked HTTP/1.0 request accepted")
		}
		if req.Proto == httpmsg.HTTP11 && !validHost(req.Host) {
			t.Fatalf("HTTP/1.1 request with Host %q", req.Host)
		}
		checkPrefixes(t, data[:n], func(p []byte) error {
			var r httpmsg.Request
			_, err := ParseRequest(p, lim, &r)
			return err
		})
		if req.Proto != httpmsg.HTTP11 {
			return // AppendRequestHead always writes HTTP/1.1, which changes the semantics
		}

		out := AppendRequestHead(nil, &req)
		var again httpmsg.Request
		if _, err := ParseRequest(out, Limits{MaxHeaderBytes: len(out), MaxHeaderCount: lim.MaxHeaderCount}, &again); err != nil {
			t.Fatalf("re-parse of %q failed: %v (from %q)", out, err, data[:n])
		}
		if again.Method != req.Method || again.Path != req.Path || again.Query != req.Query || again.Host != req.Host {
			t.Fatalf("request line changed: %q %q %q %q -> %q %q %q %q", req.Method, req.Path, req.Query, req.Host,
				again.Method, again.Path, again.Query, again.Host)
		}
		if req.Target[0] == '/' && !strings.HasSuffix(req.Target, "?") && again.Target != req.Target {
			t.Fatalf("target changed: %q -> %q", req.Target, again.Target)
		}
		if !sameHeader(req.Header, again.Header) {
			t.Fatalf("header changed:\n%v\n%v", req.Header, again.Header)
		}
		checkSplitField(t, out)
		if again.ContentLength != req.ContentLength || again.Chunked != req.Chunked || again.Close != req.Close ||
			again.Upgrade != req.Upgrade || again.Expect100 != req.Expect100 {
			t.Fatalf("framing changed:\n%+v\n%+v", req, again)
		}
	})
}

var fuzzMethods = []string{"GET", "HEAD", "POST", "CONNECT"}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		benchResponse,
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	} {
		for i := range fuzzMethods {
			f.Add([]byte(s), uint8(i))
		}
	}
	lim := Limits{MaxHeaderBytes: 4096, MaxHeaderCount: 32}
	f.Fuzz(func(t *testing.T, data []byte, m uint8) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		var resp httpmsg.Response
		n, err := ParseResponse(data, lim, method, &resp)
		if err != nil {
			checkFuzzError(t, n, err, 502)
			return
		}
		if n <= 0 || n > len(data) || n > lim.MaxHeaderBytes {
			t.Fatalf("n = %d for %d bytes", n, len(data))
		}
		if resp.Status < 100 || resp.Status > 999 {
			t.Fatalf("status %d", resp.Status)
		}
		checkMessage(t, resp.Header, resp.ContentLength, resp.Chunked)
		if resp.ContentLength < 0 && !resp.Chunked && !resp.Close {
			t.Fatal("close-delimited response without Close")
		}
		checkPrefixes(t, data[:n], func(p []byte) error {
			var r httpmsg.Response
			_, err := ParseResponse(p, lim, method, &r)
			return err
		})
		if resp.Proto != httpmsg.HTTP11 {
			return
		}
		out := AppendResponseHead(nil, &resp)
		var again httpmsg.Response
		if _, err := ParseResponse(out, Limits{MaxHeaderBytes: len(out), MaxHeaderCount: lim.MaxHeaderCount}, method, &again); err != nil {
			t.Fatalf("re-parse of %q failed: %v", out, err)
		}
		if again.Status != resp.Status || (resp.Reason != "" && again.Reason != resp.Reason) || !sameHeader(resp.Header, again.Header) ||
			again.ContentLength != resp.ContentLength || again.Chunked != resp.Chunked || again.Close != resp.Close {
			t.Fatalf("response changed:\n%+v\n%+v", resp, again)
		}
	})
}

func FuzzChunkedReader(f *testing.F) {
	for _, s := range []string{
		"5\r\nhello\r\n0\r\n\r\n",
		"0\r\n\r\n",
		"3;a=b\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-A: 1\r\nGrpc-Status: 0\r\n\r\n",
		"5 ; x=\"y\"\r\nhello\r\n0\r\n\r\n",
		"5\nhello\r\n0\r\n\r\n",
		"0\r\nContent-Length: 1\r\n\r\n",
		"ffffffffff\r\nx",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := NewChunkedReader(bufio.NewReaderSize(bytes.NewReader(data), 16), ChunkLimits{MaxExtensionBytes: 64, MaxTrailerBytes: 256, MaxTrailerCount: 4})
		body, err := io.ReadAll(cr)
		if err != nil {
			var pe *ParseError
			if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &pe) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			if cr.Trailer() != nil {
				t.Fatal("trailer after error")
			}
			return
		}
		trailer := cr.Trailer()
		for _, fl := range trailer {
			if !ValidFieldName(fl.Name) || !ValidFieldValue(fl.Value) || IsHopByHop(fl.Name) ||
				httpmsg.EqualFold(fl.Name, "content-length") || httpmsg.EqualFold(fl.Name, "host") {
				t.Fatalf("bad trailer field %q: %q", fl.Name, fl.Value)
			}
		}

		// Go's decoder must agree on the body of anything we accept. It refuses white space
		// before ";" in a chunk line, which RFC 9112 allows (BWS) and we accept.
		ref, rerr := io.ReadAll(httputil.NewChunkedReader(bufio.NewReader(bytes.NewReader(data))))
		bws := bytes.Contains(data, []byte(" ;")) || bytes.Contains(data, []byte("\t;"))
		if (rerr != nil && !bws) || (rerr == nil && !bytes.Equal(ref, body)) {
			t.Fatalf("reference decoder disagrees: %q %v, ours %q", ref, rerr, body)
		}

		// Re-encode and decode again.
		var enc bytes.Buffer
		bw := bufio.NewWriter(&enc)
		cw := NewChunkedWriter(bw)
		if _, err := cw.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := cw.CloseWithTrailer(trailer); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		cr2 := NewChunkedReader(bufio.NewReader(&enc), ChunkLimits{MaxExtensionBytes: 64, MaxTrailerBytes: 4096, MaxTrailerCount: 4})
		body2, err := io.ReadAll(cr2)
		if err != nil || !bytes.Equal(body2, body) || !sameHeader(cr2.Trailer(), trailer) {
			t.Fatalf("round trip: %q %v %v, want %q %v", body2, err, cr2.Trailer(), body, trailer)
		}
	})
}

// checkPrefixes checks that proper prefixes of an accepted head are incomplete, never an error.
func checkPrefixes(t *testing.T, head []byte, parse func([]byte) error) {
	t.Helper()
	n := len(head)
	for _, i := range []int{0, 1, n / 3, n / 2, 2 * n / 3, n - 3, n - 2, n - 1} {
		if i < 0 || i >= n {
			continue
		}
		if err := parse(head[:i]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("prefix %q of accepted head: %v", head[:i], err)
		}
	}
}

// checkSplitField checks that splitField, used for heads with more than spanCap fields, finds the
// same spans as the syntax pass.
func checkSplitField(t *testing.T, head []byte) {
	t.Helper()
	var spans fieldSpans
	_, _, te, _, err := scanRequestLine(head)
	if err != nil {
		t.Fatal(err)
	}
	_, count, err := scanFields(head, te+11, 1<<20, &spans)
	if err != nil {
		t.Fatal(err)
	}
	s, next := string(head), te+11
	for i := 0; i < min(count, spanCap); i++ {
		var sp fieldSpan
		sp, next = splitField(s, next)
		if sp != spans[i] {
			t.Fatalf("field %d of %q: splitField %v, scanFields %v", i, head, sp, spans[i])
		}
	}
}

func checkFuzzError(t *testing.T, n int, err error, statuses ...int) {
	t.Helper()
	if n != 0 {
		t.Fatalf("n = %d with error %v", n, err)
	}
	if errors.Is(err, ErrIncomplete) {
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error is not a *ParseError: %T %v", err, err)
	}
	if pe.Reason == "" || pe.Msg == "" {
		t.Fatalf("incomplete ParseError %+v", pe)
	}
	for _, s := range statuses {
		if pe.Status == s {
			return
		}
	}
	t.Fatalf("status %d not in %v: %v", pe.Status, statuses, pe)
}

// checkMessage checks invariants of any accepted head.
func checkMessage(t *testing.T, h httpmsg.Header, cl int64, chunked bool) {
	t.Helper()
	if chunked && cl != -1 {
		t.Fatalf("chunked with ContentLength %d", cl)
	}
	if cl < -1 {
		t.Fatalf("ContentLength %d", cl)
	}
	if h.Count("Content-Length") > 1 || h.Count("Transfer-Encoding") > 1 ||
		(h.Has("Content-Length") && h.Has("Transfer-Encoding")) {
		t.Fatalf("ambiguous framing accepted: %v", h)
	}
	for _, f := range h {
		if !ValidFieldName(f.Name) || !ValidFieldValue(f.Value) {
			t.Fatalf("invalid field accepted: %q: %q", f.Name, f.Value)
		}
	}
}

func sameHeader(a, b httpmsg.Header) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
