package http1

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// benchRequest is a typical GET with six header fields.
const benchRequest = "GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Server: upstream\r\n" +
	"X-Request-Id: 0123456789abcdef\r\n" +
	"\r\n"

func BenchmarkParseRequest(b *testing.B) {
	in := []byte(benchRequest)
	var req httpmsg.Request
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseRequest(in, Limits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseRequestFresh parses into a new Request each time (Header allocated too).
func BenchmarkParseRequestFresh(b *testing.B) {
	in := []byte(benchRequest)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		var req httpmsg.Request
		if _, err := ParseRequest(in, Limits{}, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	in := []byte(benchResponse)
	var resp httpmsg.Response
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseResponse(in, Limits{}, "GET", &resp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestHead(b *testing.B) {
	var req httpmsg.Request
	if _, err := ParseRequest([]byte(benchRequest), Limits{}, &req); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendRequestHead(dst[:0], &req)
	}
}

func BenchmarkAppendResponseHead(b *testing.B) {
	var resp httpmsg.Response
	if _, err := ParseResponse([]byte(benchResponse), Limits{}, "GET", &resp); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendResponseHead(dst[:0], &resp)
	}
}

func BenchmarkStripHopByHop(b *testing.B) {
	var req httpmsg.Request
	if _, err := ParseRequest([]byte(benchRequest), Limits{}, &req); err != nil {
		b.Fatal(err)
	}
	h := make(httpmsg.Header, 0, len(req.Header))
	b.ReportAllocs()
	for b.Loop() {
		h = append(h[:0], req.Header...)
		StripHopByHop(&h, false)
	}
}

func BenchmarkChunkedReader(b *testing.B) {
	var enc bytes.Buffer
	bw := bufio.NewWriter(&enc)
	cw := NewChunkedWriter(bw)
	chunk := bytes.Repeat([]byte("x"), 4096)
	for range 16 {
		_, _ = cw.Write(chunk)
	}
	_ = cw.Close()
	_ = bw.Flush()
	data := enc.Bytes()
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, 32<<10)
	cr := NewChunkedReader(br, ChunkLimits{})
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(int64(16 * len(chunk)))
	for b.Loop() {
		src.Reset(data)
		br.Reset(src)
		cr.Reset(br)
		for {
			_, err := cr.Read(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
