package listener

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// echoHandler answers every exchange from its request: GET /big/N sends N bytes, /trailer sends
// trailer fields, /hold waits for release, anything else echoes what the request carried.
type echoHandler struct {
	release chan struct{}
	started chan struct{}
}

func (h *echoHandler) ServeExchange(x *proxy.Exchange) {
	req := &x.Req
	switch {
	case strings.HasPrefix(req.Path, "/big/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(req.Path, "/big/"))
		_ = x.W.WriteHead(&httpmsg.Response{Status: 200, ContentLength: int64(n)})
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := x.W.Write(chunk[:k]); err != nil {
				x.Err = err
				return
			}
			n -= k
		}
		_ = x.W.Finish(nil)
	case req.Path == "/trailer":
		_ = x.W.WriteHead(&httpmsg.Response{Status: 200, ContentLength: -1,
			Header: httpmsg.Header{{Name: "Trailer", Value: "Grpc-Status"}}})
		_, _ = x.W.Write([]byte("body"))
		_ = x.W.Flush()
		_ = x.W.Finish(httpmsg.Header{{Name: "Grpc-Status", Value: "0"}})
	case req.Path == "/hold" && h.release != nil:
		h.started <- struct{}{}
		<-h.release
		_ = proxy.Respond(x, 200, "", "text/plain", "released")
	case req.Path == "/bighead":
		_ = x.W.WriteHead(&httpmsg.Response{Status: 200, ContentLength: 2,
			Header: httpmsg.Header{{Name: "X-Big", Value: strings.Repeat("h", 40<<10)}}})
		_, _ = x.W.Write([]byte("ok"))
		_ = x.W.Finish(nil)
	default:
		var n int64
		if x.Body != nil {
			var err error
			n, err = io.Copy(io.Discard, x.Body)
			if err != nil {
				_ = proxy.RespondError(x, err)
				return
			}
		}
		body := fmt.Sprintf("%s %s host=%s cookie=%s len=%d read=%d", req.Method, req.Target, req.Host,
			req.Header.Value("cookie"), req.ContentLength, n)
		_ = proxy.Respond(x, 200, "", "text/plain", body)
	}
}

// startH2 serves h on an h2c listener and returns its address.
func startH2(t *testing.T, h Handler, mutate func(*Settings)) (string, *Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Settings{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second,
		RequestTimeout: 10 * time.Second, MaxBodyBytes: -1, MaxConcurrentStreams: 100,
		Limits: http1.Limits{MaxHeaderBytes: 64 << 10}}
	if mutate != nil {
		mutate(s)
	}
	l := New(ln, s, Options{Name: "test", Protocol: ProtoH2C, Handler: h})
	done := make(chan error, 1)
	go func() { done <- l.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), l
}

// h2cClient is x/net's HTTP/2 client over cleartext TCP.
func h2cClient(t *testing.T) *http.Client {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func TestH2Exchanges(t *testing.T) {
	addr, _ := startH2(t, &echoHandler{}, nil)
	c := h2cClient(t)
	base := "http://" + addr
	tests := []struct {
		desc    string
		method  string
		path    string
		body    io.Reader
		header  map[string][]string
		want    string
		wantLen int
	}{
		{desc: "GET with its authority as Host", method: "GET", path: "/a?b=c", want: "GET /a?b=c host=" + addr + " cookie= len=0 read=0"},
		{desc: "split cookies joined", method: "GET", path: "/", header: map[string][]string{"Cookie": {"a=1", "b=2"}},
			want: "GET / host=" + addr + " cookie=a=1; b=2 len=0 read=0"},
		{desc: "POST of 3 MiB: the windows are reopened as it is read", method: "POST", path: "/up",
			body: bytes.NewReader(make([]byte, 3<<20)), want: "POST /up host=" + addr + " cookie= len=3145728 read=3145728"},
		{desc: "POST without a length", method: "POST", path: "/up", body: io.MultiReader(strings.NewReader("abc")),
			want: "POST /up host=" + addr + " cookie= len=-1 read=3"},
		{desc: "response of 2 MiB", method: "GET", path: "/big/2097152", wantLen: 2 << 20},
		{desc: "head of 40 KiB in CONTINUATION frames", method: "GET", path: "/bighead", want: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			for k, vs := range tt.header {
				req.Header[k] = vs
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			if tt.wantLen > 0 {
				if len(b) != tt.wantLen || resp.ContentLength != int64(tt.wantLen) {
					t.Fatalf("got %d bytes (content-length %d), want %d", len(b), resp.ContentLength, tt.wantLen)
				}
				return
			}
			if string(b) != tt.want {
				t.Fatalf("got %q, want %q", b, tt.want)
			}
		})
	}
	t.Run("trailers", func(t *testing.T) {
		resp, err := c.Get(base + "/trailer")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "body" || resp.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("body %q trailer %v", b, resp.Trailer)
		}
	})
	t.Run("concurrent streams on one connection", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := c.Get(fmt.Sprintf("%s/s%d", base, i))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := fmt.Sprintf("GET /s%d host=", i); !strings.HasPrefix(string(b), want) {
					errs <- fmt.Errorf("stream %d got %q", i, b)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// rawH2Client drives the server frame by frame.
type rawH2Client struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	henc *hpack.Encoder
	hbuf bytes.Buffer
}

func dialRaw(t *testing.T, addr string, settings ...http2.Setting) *rawH2Client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := &rawH2Client{t: t, c: c}
	r.fr = http2.NewFramer(c, c)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	r.henc = hpack.NewEncoder(&r.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := r.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return r
}

// get opens stream id with a GET for path.
func (r *rawH2Client) get(id uint32, path string) {
	r.hbuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "test"}, {":path", path}} {
		_ = r.henc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: r.hbuf.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		r.t.Fatal(err)
	}
}

// TestH2FlowControl checks that a response never outruns the client's windows: with a stream
// window of 1000 bytes the server sends 1000 bytes, then waits for WINDOW_UPDATE.
func TestH2FlowControl(t *testing.T) {
	addr, _ := startH2(t, &echoHandler{}, nil)
	r := dialRaw(t, addr, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
	r.get(1, "/big/5000")
	got, updates := 0, 0
	for got < 5000 {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = r.fr.WriteSettingsAck()
			}
		case *http2.DataFrame:
			got += len(f.Data())
			if got > 1000*(updates+1) {
				t.Fatalf("server sent %d bytes with a window of %d", got, 1000*(updates+1))
			}
			if got == 1000*(updates+1) && got < 5000 {
				updates++
				_ = r.fr.WriteWindowUpdate(1, 1000)
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("unexpected %v", f)
		}
	}
	if updates != 4 {
		t.Fatalf("%d window updates were needed, want 4", updates)
	}
}

// TestH2GracefulShutdown checks that a shutdown sends GOAWAY, lets the stream in flight finish,
// and then closes the connection.
func TestH2GracefulShutdown(t *testing.T) {
	h := &echoHandler{release: make(chan struct{}), started: make(chan struct{}, 1)}
	addr, l := startH2(t, h, nil)
	r := dialRaw(t, addr)
	r.get(1, "/hold")
	<-h.started
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- l.Shutdown(ctx)
	}()
	var goAway, status, body bool
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			break // the server closed the connection
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = r.fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			if f.ErrCode != http2.ErrCodeNo || f.LastStreamID != 1 {
				t.Errorf("GOAWAY %v last %d, want NO_ERROR last 1", f.ErrCode, f.LastStreamID)
			}
			goAway = true
			close(h.release)
		case *http2.MetaHeadersFrame:
			status = f.PseudoValue("status") == "200"
		case *http2.DataFrame:
			body = body || string(f.Data()) == "released"
		}
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if !goAway || !status || !body {
		t.Fatalf("goaway %v, response %v, body %v", goAway, status, body)
	}
}

// TestH2StreamLimit checks that streams beyond the advertised limit are refused, and that a
// stream the client reset still holds its place until its exchange ends.
func TestH2StreamLimit(t *testing.T) {
	h := &echoHandler{release: make(chan struct{}), started: make(chan struct{}, 4)}
	addr, _ := startH2(t, h, func(s *Settings) { s.MaxConcurrentStreams = 2 })
	r := dialRaw(t, addr)
	r.get(1, "/hold")
	r.get(3, "/hold")
	<-h.started
	<-h.started
	_ = r.fr.WriteRSTStream(1, http2.ErrCodeCancel) // its exchange is still running
	r.get(5, "/hold")
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok {
			if rst.StreamID != 5 || rst.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("reset %d %v, want 5 REFUSED_STREAM", rst.StreamID, rst.ErrCode)
			}
			break
		}
	}
	close(h.release)
}
