package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		desc    string
		in      string
		lim     ChunkLimits
		body    string
		trailer httpmsg.Header
		reason  string // error reason; "eof" for io.ErrUnexpectedEOF
	}{
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "hello", nil, ""},
		{"empty body", "0\r\n\r\n", ChunkLimits{}, "", nil, ""},
		{"several chunks, hex case, leading zeros", "3\r\nabc\r\nA\r\n0123456789\r\n0001\r\nz\r\n000\r\n\r\n", ChunkLimits{}, "abc0123456789z", nil, ""},
		{"upper-case hex", "a\r\n0123456789\r\n0\r\n\r\n", ChunkLimits{}, "0123456789", nil, ""},
		{"extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", ChunkLimits{}, "hello", nil, ""},
		{"extension with BWS and quoted string", "5 ; a = \"x; y\"\t;b\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "hello", nil, ""},
		{"trailers", "5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nGrpc-Message:  ok \r\n\r\n", ChunkLimits{}, "hello",
			httpmsg.Header{{Name: "Grpc-Status", Value: "0"}, {Name: "Grpc-Message", Value: "ok"}}, ""},
		{"dropped trailers", "0\r\nAuthorization: x\r\nX-Sum: 1\r\nSet-Cookie: a=b\r\n\r\n", ChunkLimits{}, "",
			httpmsg.Header{{Name: "X-Sum", Value: "1"}}, ""},
		{"extension at the limit", "1;" + strings.Repeat("a", 9) + "\r\nx\r\n0\r\n\r\n", ChunkLimits{MaxExtensionBytes: 10}, "x", nil, ""},

		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"plus sign", "+5\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"empty size", "\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"leading space", " 5\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"trailing space", "5 \r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"size too large", "10000000001\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"size overflows int64", "ffffffffffffffffff\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"too many digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"bare CR after size", "5\rhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"bare LF in extension", "5;a\nb\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"CTL in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"extension flood", "5;" + strings.Repeat("a=b;", 300) + "\r\nhello\r\n0\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadChunk},
		{"chunk overhead flood", strings.Repeat("1;"+strings.Repeat("a", 1000)+"\r\nx\r\n", 20) + "0\r\n\r\n", ChunkLimits{},
			strings.Repeat("x", 16), nil, ReasonBadChunk},
		{"extension over the limit", "1;" + strings.Repeat("a", 10) + "\r\nx\r\n0\r\n\r\n", ChunkLimits{MaxExtensionBytes: 10}, "", nil, ReasonBadChunk},
		{"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", ChunkLimits{}, "hello", nil, ReasonBadChunk},
		{"data shorter than size", "5\r\nhell\r\n0\r\n\r\n", ChunkLimits{}, "hell\r", nil, ReasonBadChunk},
		{"LF only after data", "5\r\nhello\n0\r\n\r\n", ChunkLimits{}, "hello", nil, ReasonBadChunk},
		{"trailer Content-Length", "0\r\nContent-Length: 5\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadTrailer},
		{"trailer Transfer-Encoding", "0\r\nTransfer-Encoding: chunked\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadTrailer},
		{"trailer Host", "0\r\nhost: evil.example\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadTrailer},
		{"trailer lookalike", "0\r\nContent_Length: 5\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadHeader},
		{"trailer obs-fold", "0\r\nX-A: 1\r\n 2\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadHeader},
		{"trailer space before colon", "0\r\nX-A : 1\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadHeader},
		{"trailer bare LF", "0\r\nX-A: 1\n\r\n", ChunkLimits{}, "", nil, ReasonBadHeader},
		{"trailer NUL", "0\r\nX-A: \x00\r\n\r\n", ChunkLimits{}, "", nil, ReasonBadHeader},
		{"trailer too large", "0\r\nX-A: " + strings.Repeat("a", 100) + "\r\n\r\n", ChunkLimits{MaxTrailerBytes: 64}, "", nil, ReasonBadTrailer},
		{"too many trailers", "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", ChunkLimits{MaxTrailerCount: 2}, "", nil, ReasonTooManyHeaders},
		{"EOF in size", "5", ChunkLimits{}, "", nil, "eof"},
		{"EOF in data", "5\r\nhel", ChunkLimits{}, "hel", nil, "eof"},
		{"EOF before last chunk", "5\r\nhello\r\n", ChunkLimits{}, "hello", nil, "eof"},
		{"EOF in trailers", "0\r\nX-A: 1\r\n", ChunkLimits{}, "", nil, "eof"},
		{"EOF before final CRLF", "0\r\n", ChunkLimits{}, "", nil, "eof"},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) *bufio.Reader
	}{
		{"bufio", func(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }},
		{"one-byte", func(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(iotest.OneByteReader(r), 16) }},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.desc+"/"+rd.name, func(t *testing.T) {
				cr := NewChunkedReader(rd.wrap(strings.NewReader(tt.in)), tt.lim)
				body, err := io.ReadAll(cr)
				if string(body) != tt.body {
					t.Errorf("body = %q, want %q", body, tt.body)
				}
				switch tt.reason {
				case "":
					if err != nil {
						t.Fatalf("err = %v", err)
					}
					if got := cr.Trailer(); !reflect.DeepEqual(got, tt.trailer) {
						t.Fatalf("trailer = %v, want %v", got, tt.trailer)
					}
				case "eof":
					if !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
					}
				default:
					var pe *ParseError
					if !errors.As(err, &pe) || pe.Reason != tt.reason {
						t.Fatalf("err = %v, want %s", err, tt.reason)
					}
					// Errors are sticky.
					if _, err2 := cr.Read(make([]byte, 8)); err2 != err {
						t.Fatalf("second Read err = %v", err2)
					}
					if cr.Trailer() != nil {
						t.Fatal("trailer after error")
					}
				}
			})
		}
	}
}

// The body ends together with the last data when the last chunk is already buffered, and the
// reader stops exactly at the end of the body.
func TestChunkedReaderEOFWithData(t *testing.T) {
	in := "5\r\nhello\r\n6\r\n world\r\n0\r\nX-A: 1\r\n\r\nNEXT"
	br := bufio.NewReader(strings.NewReader(in))
	cr := NewChunkedReader(br, ChunkLimits{})
	buf := make([]byte, 64)
	n, err := cr.Read(buf)
	if err != io.EOF || string(buf[:n]) != "hello world" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	rest, _ := io.ReadAll(br)
	if string(rest) != "NEXT" {
		t.Fatalf("left after body: %q", rest)
	}
	if v := cr.Trailer().Value("X-A"); v != "1" {
		t.Fatalf("trailer X-A = %q", v)
	}
}

// A Read with data in hand does not block for a chunk line that has not arrived.
func TestChunkedReaderDoesNotBlock(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("5\r\nhello\r\n"))
		// The rest never arrives until the reader has returned the first chunk.
	}()
	cr := NewChunkedReader(bufio.NewReader(pr), ChunkLimits{})
	buf := make([]byte, 64)
	n, err := cr.Read(buf)
	if err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	go func() {
		_, _ = pw.Write([]byte("0\r\n\r\n"))
	}()
	n, err = cr.Read(buf)
	if err != io.EOF || n != 0 {
		t.Fatalf("Read = %d, %v", n, err)
	}
}

func TestChunkedReaderReset(t *testing.T) {
	cr := NewChunkedReader(bufio.NewReader(strings.NewReader("0\r\nX-A: 1\r\n\r\n")), ChunkLimits{})
	if _, err := io.ReadAll(cr); err != nil {
		t.Fatal(err)
	}
	first := cr.Trailer()
	cr.Reset(bufio.NewReader(strings.NewReader("2\r\nok\r\n0\r\nX-B: 2\r\n\r\n")))
	if cr.Trailer() != nil {
		t.Fatal("trailer before EOF")
	}
	body, err := io.ReadAll(cr)
	if err != nil || string(body) != "ok" {
		t.Fatalf("%q %v", body, err)
	}
	if first.Value("X-A") != "1" || cr.Trailer().Value("X-B") != "2" {
		t.Fatalf("trailers %v %v", first, cr.Trailer())
	}
}

func TestChunkedWriter(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	cw := NewChunkedWriter(bw)
	for _, s := range []string{"hello", "", strings.Repeat("x", 300)} {
		n, err := cw.Write([]byte(s))
		if err != nil || n != len(s) {
			t.Fatalf("Write(%d) = %d, %v", len(s), n, err)
		}
	}
	if err := cw.CloseWithTrailer(httpmsg.Header{{Name: "Grpc-Status", Value: "0"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cw.Write([]byte("late")); !errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("Write after close: %v", err)
	}
	if err := cw.Close(); !errors.Is(err, ErrWriteAfterClose) {
		t.Fatalf("second Close: %v", err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "5\r\nhello\r\n12c\r\n" + strings.Repeat("x", 300) + "\r\n0\r\nGrpc-Status: 0\r\n\r\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}

	// Round trip through the reader.
	cr := NewChunkedReader(bufio.NewReader(&out), ChunkLimits{})
	body, err := io.ReadAll(cr)
	if err != nil || string(body) != "hello"+strings.Repeat("x", 300) {
		t.Fatalf("%q %v", body, err)
	}
	if cr.Trailer().Value("Grpc-Status") != "0" {
		t.Fatalf("trailer %v", cr.Trailer())
	}

	out.Reset()
	bw.Reset(&out)
	cw.Reset(bw)
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	_ = bw.Flush()
	if out.String() != "0\r\n\r\n" {
		t.Fatalf("empty body = %q", out.String())
	}
}

func TestChunkedWriterAllocs(t *testing.T) {
	bw := bufio.NewWriterSize(io.Discard, 64<<10)
	cw := NewChunkedWriter(bw)
	p := []byte("some chunk data")
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = cw.Write(p)
	})
	if allocs != 0 {
		t.Fatalf("ChunkedWriter.Write: %v allocs", allocs)
	}
}
