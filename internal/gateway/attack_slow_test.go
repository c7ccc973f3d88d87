package gateway_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// slowTimeouts are the short listener timeouts the slow-client tests run with.
const slowTimeouts = "timeouts: {readHeader: 500ms, idle: 2s, request: 1500ms}"

// dripper sends bytes to a connection slowly while a reader goroutine collects what the server
// answers, until the server closes the connection or the drip runs out.
type dripper struct {
	c         net.Conn
	closed    chan struct{} // closed when the reader saw the end of the connection
	exhausted atomic.Bool   // the whole drip was sent: the server waited it out
	mu        sync.Mutex
	got       []byte
}

// startDrip dials addr, writes prefix at once and then one byte of drip every interval (at most
// len(drip) bytes, stopping at the first write error or once the server ends the connection).
func startDrip(t testing.TB, addr, prefix, drip string, interval time.Duration, wg *sync.WaitGroup) *dripper {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	d := &dripper{c: c, closed: make(chan struct{})}
	t.Cleanup(func() { _ = c.Close() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(d.closed)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			d.mu.Lock()
			d.got = append(d.got, buf[:n]...)
			d.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; i < len(drip); i++ {
			select {
			case <-d.closed:
				return
			case <-tick.C:
			}
			if _, err := c.Write([]byte{drip[i]}); err != nil {
				return
			}
		}
		d.exhausted.Store(true)
	}()
	return d
}

// answer returns what the server sent so far.
func (d *dripper) answer() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return string(d.got)
}

// TestAttackSlowloris models Slowloris: many connections each sending a request head one byte at
// a time, to hold the server's connections open forever. Each must be closed once the readHeader
// timeout passes (with 408 or nothing), while a normal client is served meanwhile, and nothing may
// reach the upstream.
func TestAttackSlowloris(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, slowTimeouts)
	addr := listenerAddr(t, gw, "edge")
	const conns = 50
	var wg sync.WaitGroup
	defer wg.Wait()
	drips := make([]*dripper, conns)
	for i := range drips {
		// 100 bytes at 100ms: ten seconds of head, twenty times the readHeader timeout.
		drips[i] = startDrip(t, addr, fmt.Sprintf("GET /slowloris/%d HTTP/1.1\r\nHost: localhost\r\nX-Drip: ", i),
			strings.Repeat("a", 100), 100*time.Millisecond, &wg)
	}
	time.Sleep(200 * time.Millisecond) // the drips are under way
	assertServes(t, gw, rec)

	deadline := time.After(15 * time.Second)
	for i, d := range drips {
		select {
		case <-d.closed:
		case <-deadline:
			t.Fatalf("connection %d was still open after 15s (the readHeader timeout is 500ms)", i)
		}
		if d.exhausted.Load() {
			t.Errorf("connection %d was let drip its whole 10s head", i)
		}
		if a := d.answer(); a != "" && !strings.HasPrefix(a, "HTTP/1.1 408 ") {
			t.Errorf("connection %d was answered %q; want 408 or nothing", i, firstLine(a))
		}
	}
	if n := len(rec.only("/slowloris")); n != 0 {
		t.Errorf("the upstream received %d of the dripped requests", n)
	}
}

// TestAttackSlowBody models a slow-body (R-U-Dead-Yet) attack: a request head sent at once and its
// declared body one byte at a time, to hold the exchange and the upstream connection. The request
// timeout must cut it off (408 or a closed connection), and the upstream must never see the
// request complete.
func TestAttackSlowBody(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, slowTimeouts)
	var wg sync.WaitGroup
	defer wg.Wait()
	// 100 of the 1000 declared bytes, one every 100ms: ten seconds, over six times the timeout.
	d := startDrip(t, listenerAddr(t, gw, "edge"),
		"POST /slowbody HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n",
		strings.Repeat("b", 100), 100*time.Millisecond, &wg)
	time.Sleep(200 * time.Millisecond)
	assertServes(t, gw, rec)

	select {
	case <-d.closed:
	case <-time.After(15 * time.Second):
		t.Fatalf("the slow body was not cut off after 15s (the request timeout is 1.5s); answer %q", d.answer())
	}
	if d.exhausted.Load() {
		t.Errorf("the client was let drip its whole 10s body")
	}
	a := d.answer()
	if a != "" {
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(a)), nil)
		if err != nil {
			t.Fatalf("unreadable answer %q: %v", a, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 408 {
			t.Errorf("answered %d (%s); want 408 or a closed connection", resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"))
		}
	}
	// The upstream, when it got the head, must see the body fail, not complete.
	time.Sleep(100 * time.Millisecond)
	for _, r := range rec.only("/slowbody") {
		if r.BodyErr == nil {
			t.Errorf("the upstream received a complete %d-byte body", r.BodyLen)
		}
	}
}

// hugeUpstream wraps rec so that GET /huge answers with hugeSize bytes, written in 32 KiB pieces;
// written counts the bytes written and finished reports the write result on ending.
type hugeUpstream struct {
	rec      *recorder
	written  atomic.Int64
	finished chan error
}

const hugeSize = 64 << 20

func newHugeUpstream(rec *recorder) *hugeUpstream {
	return &hugeUpstream{rec: rec, finished: make(chan error, 4)}
}

func (u *hugeUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/huge" {
		u.rec.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(hugeSize))
	piece := make([]byte, 32<<10)
	var err error
	for sent := 0; sent < hugeSize && err == nil; sent += len(piece) {
		var n int
		n, err = w.Write(piece)
		u.written.Add(int64(n))
	}
	u.finished <- err
}

// liveHeap returns the bytes of live heap after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestAttackSlowReader models a slow reader: a client asks for a large response (64 MiB) and never
// reads it, so that a server that buffers responses grows without bound and one that waits holds
// the exchange forever. The gateway must apply back-pressure (the upstream cannot finish writing
// and the gateway's heap does not grow by the response size), close the connection once the
// request timeout passes, and serve other clients meanwhile. It runs alone so that the heap
// measurement sees only this exchange.
func TestAttackSlowReader(t *testing.T) {
	rec := newRecorder()
	up := newHugeUpstream(rec)
	gw := attackGatewayWith(t, fmt.Sprintf("  - {name: edge, address: \"127.0.0.1:0\", %s}\n", slowTimeouts), up)
	t.Cleanup(rec.releaseAll)

	base := liveHeap()
	c, err := net.DialTimeout("tcp", listenerAddr(t, gw, "edge"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET /huge HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the upstream to start answering", func() bool { return up.written.Load() > 0 })
	assertServes(t, gw, rec)

	// Until the upstream stops, watch the heap.
	var peak uint64
	var upErr error
	stop := time.After(15 * time.Second)
watch:
	for {
		if h := liveHeap(); h > peak {
			peak = h
		}
		select {
		case upErr = <-up.finished:
			break watch
		case <-stop:
			t.Fatalf("the upstream was still writing after 15s (the request timeout is 1.5s); %d bytes written", up.written.Load())
		case <-time.After(100 * time.Millisecond):
		}
	}
	written := up.written.Load()
	t.Logf("upstream wrote %d of %d bytes (%v); live heap grew by at most %d KiB", written, hugeSize, upErr, (int64(peak)-int64(base))>>10)
	if upErr == nil {
		t.Errorf("the upstream wrote the whole %d MiB response to a client that read nothing: no back-pressure", hugeSize>>20)
	}
	if grew := int64(peak) - int64(base); grew > 24<<20 {
		t.Errorf("the live heap grew by %d MiB while the client did not read", grew>>20)
	}

	// Whatever the buffers hold can be read; then the connection must end, well short of the
	// whole response.
	n, err := io.Copy(io.Discard, c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the gateway kept the connection open: read %d bytes until the test's deadline", n)
	}
	t.Logf("the client could still read %d bytes, then %v", n, err)
	if n >= hugeSize {
		t.Errorf("the client received the whole response (%d bytes) after the request timeout", n)
	}
}

// TestAttackSlowH2 models slow clients over HTTP/2: a header block that is never finished (HEADERS
// without END_HEADERS, then silence), a connection preface sent one byte at a time, a declared
// body sent one byte at a time, and a reader that never opens its flow-control window. Each must
// be cut off by the listener's timeouts, while other clients are served and the upstream never
// sees a complete request from them.
func TestAttackSlowH2(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	up := newHugeUpstream(rec)
	gw := attackGatewayWith(t, fmt.Sprintf("  - {name: edge, address: \"127.0.0.1:0\", %s}\n", slowTimeouts), up)
	t.Cleanup(rec.releaseAll)
	addr := listenerAddr(t, gw, "edge")

	t.Run("attacks", func(t *testing.T) {
		t.Run("unfinished header block", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			block := h.encode(h.reqFields("GET", "/unfinished")...)
			if err := h.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:len(block)/2], EndStream: true})
			}); err != nil {
				t.Fatal(err)
			}
			assertServes(t, gw, rec)
			// No stream is open, so the idle timeout (2s) applies, then GOAWAY's grace period.
			if !h.waitFor(15*time.Second, h.ended) || !h.waitFor(5*time.Second, func() bool { return h.readErr != nil }) {
				t.Fatalf("the connection with an unfinished header block was still open after 15s: %s", h.describe())
			}
			t.Logf("%s", h.describe())
			if n := len(rec.only("/unfinished")); n != 0 {
				t.Errorf("the upstream received %d requests", n)
			}
		})

		t.Run("slow preface", func(t *testing.T) {
			t.Parallel()
			var wg sync.WaitGroup
			defer wg.Wait()
			d := startDrip(t, addr, "", http2.ClientPreface, 100*time.Millisecond, &wg)
			select {
			case <-d.closed:
			case <-time.After(15 * time.Second):
				t.Fatalf("the connection sending its preface slowly was still open after 15s")
			}
			if d.exhausted.Load() {
				t.Errorf("the client was let drip its whole preface (2.4s; the readHeader timeout is 500ms)")
			}
			if a := d.answer(); a != "" && !strings.HasPrefix(a, "HTTP/1.1 4") {
				t.Errorf("answered %q; want a 4xx or nothing", firstLine(a))
			}
		})

		t.Run("slow body", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			if err := h.headers(1, false, h.reqFields("POST", "/slowbody-h2", hf("content-length", "1000"))...); err != nil {
				t.Fatal(err)
			}
			// 100 of the 1000 declared bytes, one every 100ms: ten seconds, over six times the timeout.
			cut := false
			for i := 0; i < 100 && !cut; i++ {
				cut = h.waitFor(100*time.Millisecond, func() bool { return h.streamDone(1) })
				if err := h.write(func(fr *http2.Framer) error { return fr.WriteData(1, false, []byte("b")) }); err != nil {
					cut = true
				}
			}
			if !h.waitFor(5*time.Second, func() bool { return h.streamDone(1) }) {
				t.Fatalf("the slow body was not cut off by the request timeout (1.5s): %+v %s", h.snapshot(1), h.describe())
			}
			s := h.snapshot(1)
			t.Logf("stream: %+v; %s", s, h.describe())
			if !cut {
				t.Errorf("the client was let drip its whole 10s body")
			}
			if s.status != "" && s.status != "408" {
				t.Errorf("answered %s; want 408 or a reset", s.status)
			}
			time.Sleep(100 * time.Millisecond)
			for _, r := range rec.only("/slowbody-h2") {
				if r.BodyErr == nil {
					t.Errorf("the upstream received a complete %d-byte body", r.BodyLen)
				}
			}
		})

		t.Run("reader that never opens its window", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			if err := h.get(1, "/huge"); err != nil {
				t.Fatal(err)
			}
			var upErr error
			select {
			case upErr = <-up.finished:
			case <-time.After(15 * time.Second):
				t.Fatalf("the upstream was still writing after 15s (the request timeout is 1.5s); %d bytes written; stream %+v",
					up.written.Load(), h.snapshot(1))
			}
			if upErr == nil {
				t.Errorf("the upstream wrote the whole response although the client's window stayed shut")
			}
			if !h.waitFor(5*time.Second, func() bool { return h.streamDone(1) }) {
				t.Fatalf("the stream was not reset: %+v %s", h.snapshot(1), h.describe())
			}
			s := h.snapshot(1)
			t.Logf("stream: %+v; upstream wrote %d bytes (%v); %s", s, up.written.Load(), upErr, h.describe())
			if s.data > 1<<20 {
				t.Errorf("the client received %d bytes through a 64 KiB window", s.data)
			}
		})

	})
	assertServes(t, gw, rec)
}
