package listener

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshgate/meshgate/internal/proxy/http1"
)

// FuzzH2Conn feeds arbitrary bytes after the client preface to the HTTP/2 frame loop. Whatever
// arrives, the connection must end (it never hangs once the client has closed) without a panic,
// and every exchange it started must end with it.
func FuzzH2Conn(f *testing.F) {
	f.Add(seedFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteSettings()
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(":method", "GET", ":scheme", "http", ":authority", "a", ":path", "/"), EndStream: true, EndHeaders: true})
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 10})
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: enc(":method", "POST", ":scheme", "http", ":authority", "a", ":path", "/u", "content-length", "3"), EndHeaders: true})
		_ = fr.WriteData(1, false, []byte("ab"))
		_ = fr.WriteWindowUpdate(1, 100)
		_ = fr.WriteData(1, true, []byte("c"))
		_ = fr.WriteRSTStream(1, http2.ErrCodeCancel)
		_ = fr.WritePing(false, [8]byte{1})
	}))
	f.Add(seedFrames(func(fr *http2.Framer, enc func(...string) []byte) {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: enc(":method", "GET", ":scheme", "http"), EndHeaders: false})
		_ = fr.WriteContinuation(3, true, enc(":path", "/big/100000"))
		_ = fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	}))
	f.Fuzz(func(t *testing.T, frames []byte) {
		client, server := net.Pipe()
		ln := &oneConnListener{}
		l := New(ln, &Settings{ReadHeaderTimeout: time.Second, IdleTimeout: time.Second, RequestTimeout: time.Second,
			MaxBodyBytes: 1 << 16, MaxConcurrentStreams: 8, Limits: http1.Limits{MaxHeaderBytes: 8 << 10}},
			Options{Name: "fuzz", Protocol: ProtoH2C, Handler: &echoHandler{}})
		done := make(chan struct{})
		go func() {
			defer close(done)
			l.serveH2(server)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(2 * time.Second))
		_, _ = client.Write([]byte(http2.ClientPreface))
		_, _ = client.Write(frames)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection did not end after the client closed")
		}
	})
}

// seedFrames returns the bytes write produces with a framer and an HPACK encoder.
func seedFrames(write func(fr *http2.Framer, enc func(...string) []byte)) []byte {
	var out, hb bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	he := hpack.NewEncoder(&hb)
	enc := func(kv ...string) []byte {
		hb.Reset()
		for i := 0; i+1 < len(kv); i += 2 {
			_ = he.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
		}
		return append([]byte(nil), hb.Bytes()...)
	}
	write(fr, enc)
	return out.Bytes()
}

// oneConnListener is a net.Listener that never accepts: the fuzzer hands the connection over
// itself.
type oneConnListener struct{}

func (oneConnListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (oneConnListener) Close() error              { return nil }
func (oneConnListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }
