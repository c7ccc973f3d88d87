package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/testpki"
)

// rawH2 is a hand-driven HTTP/2 client connection: the test writes frames one by one (valid or
// not) and a reader goroutine records what the server sends back.
type rawH2 struct {
	c    net.Conn
	addr string

	wmu  sync.Mutex
	bw   *bufio.Writer
	fr   *http2.Framer // writes only
	enc  *hpack.Encoder
	hbuf bytes.Buffer

	readerOnce sync.Once
	readerDone chan struct{}
	changed    chan struct{} // signalled (without blocking) on every recorded event

	mu           sync.Mutex
	settings     map[http2.SettingID]uint32 // the server's first SETTINGS
	gotSettings  bool
	settingsAcks int
	acked        bool // our acknowledgement of the server's first SETTINGS was written
	pingAcks     int
	markerAcked  bool // the PING carrying pingMarker was acknowledged
	goAway       bool
	goAwayCode   http2.ErrCode
	readErr      error // why the reader stopped: the connection ended
	streams      map[uint32]*rawStream
}

// rawStream is what the server sent on one stream.
type rawStream struct {
	status  string // :status of the final response head, "" when none came
	rst     bool
	rstCode http2.ErrCode
	data    int
	ended   bool // END_STREAM seen
}

// pingMarker is the payload of the PING a test sends to learn that the server has processed every
// frame sent before it.
var pingMarker = [8]byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8}

// dialRawH2 opens a cleartext HTTP/2 connection with prior knowledge to addr and sends the client
// preface and an empty SETTINGS frame. With read set the reader starts at once, and dialRawH2 returns
// once the server's SETTINGS are acknowledged (so that acknowledgement cannot land inside a header
// block the test writes later); otherwise the test starts the reader with startReader, and until
// then nothing the server sends is read. Every I/O is bounded by a 30s deadline. The connection is
// closed when the test ends.
func dialRawH2(t testing.TB, addr string, read bool) *rawH2 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	h := &rawH2{
		c: c, addr: addr,
		bw:         bufio.NewWriterSize(c, 64<<10),
		readerDone: make(chan struct{}),
		changed:    make(chan struct{}, 1),
		streams:    map[uint32]*rawStream{},
	}
	h.fr = http2.NewFramer(h.bw, nil)
	h.fr.AllowIllegalWrites = true
	h.enc = hpack.NewEncoder(&h.hbuf)
	t.Cleanup(h.close)
	if _, err := h.bw.WriteString(http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := h.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if read {
		h.startReader()
		if !h.waitFor(5*time.Second, func() bool { return h.acked }) {
			t.Fatalf("no SETTINGS from the server: %s", h.describe())
		}
	}
	return h
}

// close closes the connection and waits for the reader.
func (h *rawH2) close() {
	_ = h.c.Close()
	h.readerOnce.Do(func() { close(h.readerDone) })
	<-h.readerDone
}

// startReader starts reading and recording the server's frames; SETTINGS are acknowledged.
func (h *rawH2) startReader() {
	h.readerOnce.Do(func() { go h.read() })
}

func (h *rawH2) read() {
	defer close(h.readerDone)
	fr := http2.NewFramer(nil, h.c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 20
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			h.record(func() { h.readErr = err })
			return
		}
		var ackSettings bool
		h.record(func() {
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if f.IsAck() {
					h.settingsAcks++
					return
				}
				ackSettings = true
				if !h.gotSettings {
					h.gotSettings = true
					h.settings = map[http2.SettingID]uint32{}
					_ = f.ForeachSetting(func(s http2.Setting) error {
						h.settings[s.ID] = s.Val
						return nil
					})
				}
			case *http2.PingFrame:
				if f.IsAck() {
					h.pingAcks++
					h.markerAcked = h.markerAcked || f.Data == pingMarker
				}
			case *http2.GoAwayFrame:
				h.goAway, h.goAwayCode = true, f.ErrCode
			case *http2.RSTStreamFrame:
				s := h.stream(f.StreamID)
				s.rst, s.rstCode = true, f.ErrCode
			case *http2.MetaHeadersFrame:
				s := h.stream(f.StreamID)
				if st := f.PseudoValue("status"); st != "" && !strings.HasPrefix(st, "1") {
					s.status = st
				}
				s.ended = s.ended || f.StreamEnded()
			case *http2.DataFrame:
				s := h.stream(f.StreamID)
				s.data += len(f.Data())
				s.ended = s.ended || f.StreamEnded()
			}
		})
		if ackSettings {
			h.wmu.Lock()
			if h.fr.WriteSettingsAck() == nil {
				_ = h.bw.Flush()
			}
			h.wmu.Unlock()
			h.record(func() { h.acked = true })
		}
	}
}

// stream returns the record of stream id; h.mu is held.
func (h *rawH2) stream(id uint32) *rawStream {
	s := h.streams[id]
	if s == nil {
		s = &rawStream{}
		h.streams[id] = s
	}
	return s
}

func (h *rawH2) record(f func()) {
	h.mu.Lock()
	f()
	h.mu.Unlock()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// waitFor waits until cond, called with h.mu held, holds; it reports false after timeout.
func (h *rawH2) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-h.changed:
		case <-h.readerDone:
			h.mu.Lock()
			ok := cond()
			h.mu.Unlock()
			return ok
		case <-deadline.C:
			return false
		}
	}
}

// ended reports whether the server ended the connection: GOAWAY or the end of the byte stream
// (not the test's own deadline). h.mu is held.
func (h *rawH2) ended() bool {
	var ne net.Error
	return h.goAway || h.readErr != nil && !(errors.As(h.readErr, &ne) && ne.Timeout())
}

// isEnded is ended for callers that do not hold h.mu.
func (h *rawH2) isEnded() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ended()
}

// goAwayCodeSeen returns the code of the GOAWAY the server sent, and whether it sent one.
func (h *rawH2) goAwayCodeSeen() (http2.ErrCode, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.goAwayCode, h.goAway
}

// waitClosed waits up to timeout for the server to send GOAWAY or close the connection.
func (h *rawH2) waitClosed(timeout time.Duration) bool {
	return h.waitFor(timeout, h.ended)
}

// streamDone reports whether stream id got a reset, a complete response, or the connection ended.
// h.mu is held.
func (h *rawH2) streamDone(id uint32) bool {
	s := h.streams[id]
	return h.ended() || s != nil && (s.rst || s.ended)
}

// snapshot returns a copy of the record of stream id.
func (h *rawH2) snapshot(id uint32) rawStream {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.streams[id]; s != nil {
		return *s
	}
	return rawStream{}
}

// describe summarises the connection's state for failure messages.
func (h *rawH2) describe() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("goaway=%v(%v) readErr=%v settingsAcks=%d pingAcks=%d streams=%d",
		h.goAway, h.goAwayCode, h.readErr, h.settingsAcks, h.pingAcks, len(h.streams))
}

// write runs f with the frame writer and flushes.
func (h *rawH2) write(f func(fr *http2.Framer) error) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if err := f(h.fr); err != nil {
		return err
	}
	return h.bw.Flush()
}

// encode returns the HPACK block of fields, in order, with the connection's encoder.
func (h *rawH2) encode(fields ...hpack.HeaderField) []byte {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	return bytes.Clone(h.encodeLocked(fields...))
}

// encodeLocked is encode for callers that hold h.wmu (inside write); the result is valid until
// the next encoding.
func (h *rawH2) encodeLocked(fields ...hpack.HeaderField) []byte {
	h.hbuf.Reset()
	for _, f := range fields {
		_ = h.enc.WriteField(f)
	}
	return h.hbuf.Bytes()
}

// reqFields returns the pseudo-header fields of a request for path followed by extra.
func (h *rawH2) reqFields(method, path string, extra ...hpack.HeaderField) []hpack.HeaderField {
	fs := []hpack.HeaderField{
		{Name: ":method", Value: method},
		{Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: h.addr},
		{Name: ":path", Value: path},
	}
	return append(fs, extra...)
}

// headers sends one HEADERS frame (END_HEADERS set) carrying fields on stream id.
func (h *rawH2) headers(id uint32, endStream bool, fields ...hpack.HeaderField) error {
	block := h.encode(fields...)
	return h.write(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: endStream, EndHeaders: true})
	})
}

// get sends a complete GET for path on stream id.
func (h *rawH2) get(id uint32, path string, extra ...hpack.HeaderField) error {
	return h.headers(id, true, h.reqFields("GET", path, extra...)...)
}

// hf is a header field.
func hf(name, value string) hpack.HeaderField { return hpack.HeaderField{Name: name, Value: value} }

// recorder is an upstream handler that records every request it receives and answers 200 "ok".
// A request whose path starts with /hold waits until release is closed (or the client goes); one
// whose path starts with /slow takes 300ms.
type recorder struct {
	mu          sync.Mutex
	reqs        []recorded
	release     chan struct{}
	releaseOnce sync.Once
	holding     atomic.Int64
}

// recorded is one request as the upstream saw it.
type recorded struct {
	Method, Path  string
	Header        http.Header
	ContentLength int64
	BodyLen       int
	BodyErr       error // nil when the whole declared body arrived
}

func newRecorder() *recorder { return &recorder{release: make(chan struct{})} }

// releaseAll lets every held request answer.
func (rec *recorder) releaseAll() { rec.releaseOnce.Do(func() { close(rec.release) }) }

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(),
		ContentLength: r.ContentLength, BodyLen: len(body), BodyErr: err})
	rec.mu.Unlock()
	if err != nil {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/slow") {
		select {
		case <-time.After(300 * time.Millisecond):
		case <-r.Context().Done():
		}
	}
	if strings.HasPrefix(r.URL.Path, "/hold") {
		rec.holding.Add(1)
		select {
		case <-rec.release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, "ok")
}

// requests returns a copy of what the upstream received so far.
func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// only returns the requests whose path starts with prefix.
func (rec *recorder) only(prefix string) []recorded {
	var out []recorded
	for _, r := range rec.requests() {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// attackGateway starts an upstream with a recorder and a gateway whose listener "edge" has the
// given extra YAML mapping entries (for example "limits: {maxConcurrentStreams: 4}") and routes
// everything to the upstream.
func attackGateway(t testing.TB, listenerExtra string) (*gateway.Gateway, *recorder) {
	t.Helper()
	if listenerExtra != "" {
		listenerExtra = ", " + listenerExtra
	}
	rec := newRecorder()
	return attackGatewayWith(t, fmt.Sprintf(`  - {name: edge, address: "127.0.0.1:0"%s}
`, listenerExtra), rec), rec
}

// attackGatewayWith starts an upstream served by h (released at the end when it is a recorder)
// and a gateway with the given listeners (YAML list items) routing everything to it.
func attackGatewayWith(t testing.TB, listeners string, h http.Handler) *gateway.Gateway {
	t.Helper()
	up := startUpstream(t, "up", upstreamOptions{Handler: h})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
%sroutes:
  - name: all
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, listeners, up.Addr))
	if rec, ok := h.(*recorder); ok {
		t.Cleanup(rec.releaseAll) // before the gateway's shutdown waits for held requests
	}
	return gw
}

// freshSeq numbers the requests assertServes sends, so that concurrent checks count their own.
var freshSeq atomic.Int64

// assertServes checks that the gateway still answers a normal request on a fresh connection to
// the listener named "edge", over HTTP/2 and over HTTP/1.1, and that the upstream received both.
func assertServes(t testing.TB, gw *gateway.Gateway, rec *recorder) {
	t.Helper()
	var dials atomic.Int64
	path := fmt.Sprintf("/fresh/%d", freshSeq.Add(1))
	for i, c := range []*http.Client{h2Client(t, &dials), newClient(t)} {
		resp, err := c.Get(baseURL(t, gw, "edge") + path)
		if err != nil {
			t.Fatalf("a normal request on a fresh connection failed: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("a normal request on a fresh connection (HTTP/%d): status %d body %q err %v",
				2-i, resp.StatusCode, body, err)
		}
	}
	if n := len(rec.only(path)); n != 2 {
		t.Fatalf("the upstream received %d of the 2 normal requests", n)
	}
}

// writeFlood calls frame n times in batches, flushing every batch, and stops at the first write
// error (the server closed the connection). It returns how many calls succeeded.
func (h *rawH2) writeFlood(n, batch int, frame func(fr *http2.Framer, i int) error) (int, error) {
	for i := 0; i < n; i += batch {
		err := h.write(func(fr *http2.Framer) error {
			for j := i; j < min(i+batch, n); j++ {
				if err := frame(fr, j); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return i, err
		}
	}
	return n, nil
}

// TestAttackH2RapidReset models CVE-2023-44487 (HTTP/2 rapid reset): a client opens thousands of
// streams to a slow endpoint and cancels each one at once, so that the server keeps starting work
// the client never waits for while the stream limit never seems reached. The server must end the
// connection or keep the work bounded by its stream limit: the upstream sees at most that many.
func TestAttackH2RapidReset(t *testing.T) {
	t.Parallel()
	const maxStreams = 8
	gw, rec := attackGateway(t, fmt.Sprintf("limits: {maxConcurrentStreams: %d}", maxStreams))
	h := dialRawH2(t, listenerAddr(t, gw, "edge"), true)

	const streams = 5000
	sent, werr := h.writeFlood(streams, 50, func(fr *http2.Framer, i int) error {
		id := uint32(2*i + 1)
		block := h.encodeLocked(h.reqFields("GET", "/slow/rr")...)
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}); err != nil {
			return err
		}
		return fr.WriteRSTStream(id, http2.ErrCodeCancel)
	})
	closed := h.waitClosed(5 * time.Second)
	t.Logf("sent %d of %d HEADERS+RST_STREAM pairs (write error %v); connection ended: %v (%s)",
		sent, streams, werr, closed, h.describe())
	if !closed && sent < streams {
		t.Errorf("writes failed after %d pairs but the connection did not end: %s", sent, h.describe())
	}
	if code, goAway := h.goAwayCodeSeen(); goAway && code != http2.ErrCodeEnhanceYourCalm && code != http2.ErrCodeProtocol {
		t.Errorf("GOAWAY %v; want ENHANCE_YOUR_CALM", code)
	}

	// Handlers already running finish within the upstream's 300ms: then count what reached it.
	time.Sleep(500 * time.Millisecond)
	hits := len(rec.only("/slow/rr"))
	t.Logf("the upstream received %d of the reset requests", hits)
	if hits > maxStreams {
		t.Errorf("the upstream received %d reset requests; want at most the stream limit, %d", hits, maxStreams)
	}
	assertServes(t, gw, rec)
}

// TestAttackH2ContinuationFlood models the CONTINUATION flood (CVE-2024-27316, CVE-2023-45288): a
// HEADERS frame without END_HEADERS followed by an endless run of CONTINUATION frames, which a
// server that buffers or decodes the whole header block before judging it pays for in memory or
// CPU. The connection must be closed soon after the block exceeds the header size limit.
func TestAttackH2ContinuationFlood(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	h := dialRawH2(t, listenerAddr(t, gw, "edge"), true)

	// A fragment of whole never-indexed literal fields can be repeated: it leaves the decoder's
	// dynamic table alone, so every copy decodes the same way.
	first := h.encode(h.reqFields("GET", "/cont")...)
	var chunk []byte
	{
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for i := 0; b.Len() < 15<<10; i++ {
			_ = e.WriteField(hpack.HeaderField{Name: fmt.Sprintf("x-flood-%d", i), Value: strings.Repeat("a", 1000), Sensitive: true})
		}
		chunk = b.Bytes()
	}
	const frames = 1000 // about 15 MiB of header block
	sent, werr := h.writeFlood(frames+1, 10, func(fr *http2.Framer, i int) error {
		if i == 0 {
			return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: first, EndStream: true})
		}
		return fr.WriteContinuation(1, false, chunk)
	})
	closed := h.waitClosed(5 * time.Second)
	t.Logf("wrote %d of %d frames (%v); %s", sent, frames+1, werr, h.describe())
	if !closed {
		t.Fatalf("the connection was not closed after a %d-frame CONTINUATION flood: %s", sent, h.describe())
	}
	if werr == nil {
		t.Errorf("the server accepted all %d KiB of header block instead of closing early", (frames*len(chunk))>>10)
	}
	if code, goAway := h.goAwayCodeSeen(); goAway && code != http2.ErrCodeProtocol && code != http2.ErrCodeEnhanceYourCalm && code != http2.ErrCodeCompression {
		t.Errorf("GOAWAY code %v; want PROTOCOL_ERROR (or ENHANCE_YOUR_CALM)", code)
	}
	if n := len(rec.only("/cont")); n != 0 {
		t.Errorf("the upstream received %d requests from the flooded header block", n)
	}
	assertServes(t, gw, rec)
}

// TestAttackH2HPACKBomb models HPACK bombs: a header block of a few kilobytes that references one
// dynamic-table entry thousands of times, so that it decodes to megabytes. The request must be
// refused (431, or a stream or connection error) without ever being forwarded.
func TestAttackH2HPACKBomb(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	addr := listenerAddr(t, gw, "edge")

	check := func(t *testing.T, h *rawH2, id uint32, path string) {
		t.Helper()
		if !h.waitFor(10*time.Second, func() bool { return h.streamDone(id) }) {
			t.Fatalf("no answer to the bomb: %s", h.describe())
		}
		s := h.snapshot(id)
		t.Logf("stream: %+v; %s", s, h.describe())
		if strings.HasPrefix(s.status, "2") {
			t.Errorf("the bomb was answered %s; want 431 or a reset", s.status)
		}
		if n := len(rec.only(path)); n != 0 {
			t.Errorf("the upstream received %d bomb requests", n)
		}
	}

	t.Run("attacks", func(t *testing.T) {
		t.Run("large entry referenced 5000 times", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			fields := h.reqFields("GET", "/bomb-large")
			big := hf("x-bomb", strings.Repeat("b", 4000)) // fits the 4096-byte dynamic table
			for range 5000 {
				fields = append(fields, big) // a one-byte index after the first
			}
			block := h.encode(fields...)
			t.Logf("header block of %d bytes decodes to about %d MiB", len(block), 5000*4000>>20)
			if err := h.write(func(fr *http2.Framer) error {
				return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true, EndHeaders: true})
			}); err != nil {
				t.Fatal(err)
			}
			check(t, h, 1, "/bomb-large")
			if s := h.snapshot(1); s.status != "" && s.status != "431" {
				t.Errorf("status %s; want 431", s.status)
			}
		})

		t.Run("small entry referenced past the field count limit", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			fields := h.reqFields("GET", "/bomb-count")
			for range 1500 { // 1500 fields of 37 bytes: under the byte limit, far over the count limit
				fields = append(fields, hf("x-c", "v"))
			}
			if err := h.headers(1, true, fields...); err != nil {
				t.Fatal(err)
			}
			check(t, h, 1, "/bomb-count")
			if s := h.snapshot(1); s.status != "" && s.status != "431" {
				t.Errorf("status %s; want 431", s.status)
			}
			for _, r := range rec.requests() {
				if n := len(r.Header["X-C"]); n > 100 {
					t.Errorf("the upstream received %s with %d X-C fields; the listener allows 100 fields", r.Path, n)
				}
			}
		})

	})
	assertServes(t, gw, rec)
}

// TestAttackH2ControlFloods models floods of cheap frames that each cost the server work or an
// answer: SETTINGS and PING floods (CVE-2019-9515, CVE-2019-9512) from a client that does not read
// the acknowledgements, and floods of empty DATA frames and of empty HEADERS/CONTINUATION
// fragments (CVE-2019-9518). The server must close the connection or keep its work and memory
// bounded (never more answers than frames), and stay responsive.
func TestAttackH2ControlFloods(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	addr := listenerAddr(t, gw, "edge")
	const n = 20000

	// ackFlood floods frames the server must acknowledge without reading, then reads: once a
	// marker PING sent after the flood is acknowledged (the server processed everything) the
	// connection must have ended, or it must have answered at most one acknowledgement per frame
	// and still serve a request.
	ackFlood := func(t *testing.T, n int, frame func(fr *http2.Framer, i int) error, acks func(h *rawH2) int) {
		h := dialRawH2(t, addr, false)
		sent, werr := h.writeFlood(n, 500, frame)
		h.startReader()
		if werr == nil {
			werr = h.write(func(fr *http2.Framer) error { return fr.WritePing(false, pingMarker) })
		}
		done := h.waitFor(20*time.Second, func() bool { return h.ended() || h.markerAcked })
		t.Logf("sent %d (%v); %s", sent, werr, h.describe())
		if !done {
			t.Fatalf("after %d frames the server neither ended the connection nor caught up: %s", sent, h.describe())
		}
		h.mu.Lock()
		got, ended := acks(h), h.ended()
		h.mu.Unlock()
		if got > sent {
			t.Errorf("%d acknowledgements for %d frames", got, sent)
		}
		if !ended {
			if err := h.get(1, "/after-flood"); err != nil {
				t.Fatal(err)
			}
			if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) || h.snapshot(1).status != "200" {
				t.Errorf("the flooded connection stayed open but did not serve a request: %+v %s", h.snapshot(1), h.describe())
			}
		}
	}

	t.Run("attacks", func(t *testing.T) {
		t.Run("SETTINGS flood", func(t *testing.T) {
			t.Parallel()
			// The server may answer several SETTINGS with one acknowledgement; the first one it sent
			// is acknowledged by the reader, and its own first SETTINGS needs one answer.
			ackFlood(t, 10000, func(fr *http2.Framer, i int) error {
				return fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
			}, func(h *rawH2) int { return h.settingsAcks - 1 })
		})
		t.Run("PING flood", func(t *testing.T) {
			t.Parallel()
			ackFlood(t, 20000, func(fr *http2.Framer, i int) error {
				return fr.WritePing(false, [8]byte{byte(i >> 8), byte(i)})
			}, func(h *rawH2) int { return h.pingAcks - 1 })
		})

		t.Run("empty DATA flood", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			if err := h.headers(1, false, h.reqFields("POST", "/empty-data", hf("content-length", "5"))...); err != nil {
				t.Fatal(err)
			}
			sent, werr := h.writeFlood(n, 500, func(fr *http2.Framer, i int) error { return fr.WriteData(1, false, nil) })
			if werr == nil {
				werr = h.write(func(fr *http2.Framer) error { return fr.WriteData(1, true, []byte("hello")) })
			}
			t.Logf("sent %d empty DATA frames (%v)", sent, werr)
			if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) {
				t.Fatalf("no end to the stream or the connection: %s", h.describe())
			}
			s := h.snapshot(1)
			t.Logf("stream: %+v; %s", s, h.describe())
			for _, r := range rec.only("/empty-data") {
				if r.BodyErr == nil && r.BodyLen != 5 {
					t.Errorf("the upstream received a complete %d-byte body; want the 5 bytes sent", r.BodyLen)
				}
			}
			if !h.isEnded() && s.status != "200" {
				t.Errorf("the connection stayed open but the request got %+v", s)
			}
		})

		t.Run("empty HEADERS and CONTINUATION flood", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			sent, werr := h.writeFlood(n, 500, func(fr *http2.Framer, i int) error {
				if i == 0 {
					return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, EndStream: true})
				}
				return fr.WriteContinuation(1, false, nil)
			})
			if werr == nil {
				werr = h.write(func(fr *http2.Framer) error {
					return fr.WriteContinuation(1, true, h.encodeLocked(h.reqFields("GET", "/empty-cont")...))
				})
			}
			t.Logf("sent %d empty fragments (%v)", sent, werr)
			if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) {
				t.Fatalf("no end to the stream or the connection: %s", h.describe())
			}
			s := h.snapshot(1)
			t.Logf("stream: %+v; %s", s, h.describe())
			if n := len(rec.only("/empty-cont")); n > 1 {
				t.Errorf("the upstream received the request %d times", n)
			}
			if !h.isEnded() && s.status != "200" {
				t.Errorf("the connection stayed open but the request got %+v", s)
			}
		})

	})
	assertServes(t, gw, rec)
}

// TestAttackH2MalformedHeaders models request smuggling and header injection through field names
// and values HTTP/2 forbids (RFC 9113 §8.2.1, §8.3): upper case, CR/LF, NUL, colons and spaces in
// names, control characters in values, misplaced, duplicated, missing or unknown pseudo-header
// fields. Each must be a stream error (or 400) and never reach the upstream.
func TestAttackH2MalformedHeaders(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	addr := listenerAddr(t, gw, "edge")
	pseudo := func(path string) []hpack.HeaderField {
		return []hpack.HeaderField{hf(":method", "GET"), hf(":scheme", "http"), hf(":authority", addr), hf(":path", path)}
	}
	cases := []struct {
		name   string
		fields func(path string) []hpack.HeaderField
	}{
		{"upper-case name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("X-Upper", "1")) }},
		{"CR LF in name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a\r\nx-injected", "1")) }},
		{"LF in name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a\nx-injected", "1")) }},
		{"colon inside name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a:b", "1")) }},
		{"space in name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x a", "1")) }},
		{"NUL in name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a\x00", "1")) }},
		{"empty name", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("", "1")) }},
		{"CR LF in value", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a", "1\r\nx-injected: 1")) }},
		{"NUL in value", func(p string) []hpack.HeaderField { return append(pseudo(p), hf("x-a", "1\x00")) }},
		{"pseudo-header after regular header", func(p string) []hpack.HeaderField {
			return []hpack.HeaderField{hf(":method", "GET"), hf(":scheme", "http"), hf("x-a", "1"), hf(":authority", addr), hf(":path", p)}
		}},
		{"unknown pseudo-header", func(p string) []hpack.HeaderField { return append(pseudo(p), hf(":foo", "bar")) }},
		{"response pseudo-header in request", func(p string) []hpack.HeaderField { return append(pseudo(p), hf(":status", "200")) }},
		{"duplicate :path", func(p string) []hpack.HeaderField { return append(pseudo(p), hf(":path", "/other")) }},
		{"missing :path", func(p string) []hpack.HeaderField { return pseudo(p)[:3] }},
		{"path not starting with slash", func(p string) []hpack.HeaderField {
			f := pseudo(p)
			f[3].Value = "bad" + p
			return f
		}},
	}
	t.Run("attacks", func(t *testing.T) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				h := dialRawH2(t, addr, true)
				path := fmt.Sprintf("/malformed/%d", i)
				if err := h.headers(1, true, c.fields(path)...); err != nil {
					t.Fatal(err)
				}
				if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) {
					t.Fatalf("no answer: %s", h.describe())
				}
				s := h.snapshot(1)
				switch {
				case s.rst && s.rstCode == http2.ErrCodeProtocol:
				case s.status == "400":
				case h.isEnded() && !s.rst && s.status == "":
					if code, _ := h.goAwayCodeSeen(); code != http2.ErrCodeProtocol && code != http2.ErrCodeCompression {
						t.Errorf("the connection ended with %v; want a stream error PROTOCOL_ERROR", code)
					}
				default:
					t.Errorf("stream got %+v (%s); want RST_STREAM PROTOCOL_ERROR or 400", s, h.describe())
				}
				// The connection survives a stream error: a valid request on it is still served.
				if !h.isEnded() {
					if err := h.get(3, "/after-malformed"); err != nil {
						t.Fatal(err)
					}
					if !h.waitFor(10*time.Second, func() bool { return h.streamDone(3) }) || h.snapshot(3).status != "200" {
						t.Errorf("a valid request after the malformed one got %+v (%s)", h.snapshot(3), h.describe())
					}
				}
				for _, r := range rec.requests() {
					if strings.HasPrefix(r.Path, "/malformed/") || r.Header.Get("X-Injected") != "" {
						t.Errorf("the upstream received %s %s with %v", r.Method, r.Path, r.Header)
					}
				}
			})
		}
	})
	assertServes(t, gw, rec)
}

// TestAttackH2ContentLengthMismatch models body smuggling through a content-length that disagrees
// with the DATA frames (RFC 9113 §8.1.1): the upstream must never accept a truncated or extended
// body as complete, and the client must not get a success for it.
func TestAttackH2ContentLengthMismatch(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	addr := listenerAddr(t, gw, "edge")
	cases := []struct {
		name     string
		declared int
		frames   []string // DATA payloads; the last one carries END_STREAM
		// servable: the declared body is complete before the excess arrives (it is empty, or the
		// first frame holds all of it). A streaming proxy may forward exactly the declared body
		// and even answer before the excess arrives; the excess itself must never be forwarded.
		servable bool
	}{
		{name: "shorter body", declared: 100, frames: []string{strings.Repeat("s", 40)}},
		{name: "longer body in one frame", declared: 10, frames: []string{strings.Repeat("l", 20)}},
		{name: "body on a declared empty request", declared: 0, frames: []string{"x"}, servable: true},
		{name: "longer body over two frames", declared: 10, frames: []string{strings.Repeat("m", 10), strings.Repeat("M", 5)}, servable: true},
	}
	t.Run("attacks", func(t *testing.T) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				h := dialRawH2(t, addr, true)
				path := fmt.Sprintf("/cl/%d", i)
				if err := h.headers(1, false, h.reqFields("POST", path, hf("content-length", fmt.Sprint(c.declared)))...); err != nil {
					t.Fatal(err)
				}
				err := h.write(func(fr *http2.Framer) error {
					for j, d := range c.frames {
						if err := fr.WriteData(1, j == len(c.frames)-1, []byte(d)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) {
					t.Fatalf("no answer: %s", h.describe())
				}
				s := h.snapshot(1)
				t.Logf("stream: %+v", s)
				if strings.HasPrefix(s.status, "2") && !c.servable {
					t.Errorf("the client got %s for a body that does not match its content-length", s.status)
				}
				// Handlers that already started may still be talking to the upstream: wait for them.
				time.Sleep(100 * time.Millisecond)
				for _, r := range rec.only(path) {
					if r.BodyLen > c.declared {
						t.Errorf("the upstream received %d body bytes; %d were declared", r.BodyLen, c.declared)
					}
					if r.BodyErr == nil && !c.servable {
						t.Errorf("the upstream accepted a %d-byte body as complete; the client sent %d bytes against a content-length of %d",
							r.BodyLen, len(strings.Join(c.frames, "")), c.declared)
					}
				}
			})
		}
	})
	assertServes(t, gw, rec)
}

// TestAttackH2ConnectionSpecificHeaders models smuggling through connection-specific fields, which
// HTTP/2 forbids (RFC 9113 §8.2.2): connection, keep-alive, proxy-connection, transfer-encoding,
// upgrade, and te other than "trailers". Such requests are malformed: refused, never forwarded.
func TestAttackH2ConnectionSpecificHeaders(t *testing.T) {
	t.Parallel()
	gw, rec := attackGateway(t, "")
	addr := listenerAddr(t, gw, "edge")
	bad := [][2]string{
		{"connection", "keep-alive"},
		{"connection", "close"},
		{"keep-alive", "timeout=5"},
		{"proxy-connection", "keep-alive"},
		{"transfer-encoding", "chunked"},
		{"upgrade", "websocket"},
		{"upgrade", "h2c"},
		{"te", "gzip"},
		{"te", "trailers, gzip"},
	}
	t.Run("attacks", func(t *testing.T) {
		for i, f := range bad {
			t.Run(f[0]+": "+f[1], func(t *testing.T) {
				t.Parallel()
				h := dialRawH2(t, addr, true)
				path := fmt.Sprintf("/connspecific/%d", i)
				if err := h.get(1, path, hf(f[0], f[1])); err != nil {
					t.Fatal(err)
				}
				if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) {
					t.Fatalf("no answer: %s", h.describe())
				}
				s := h.snapshot(1)
				if !(s.rst && s.rstCode == http2.ErrCodeProtocol) && s.status != "400" {
					t.Errorf("stream got %+v (%s); want 400 or RST_STREAM PROTOCOL_ERROR", s, h.describe())
				}
				if n := len(rec.only(path)); n != 0 {
					t.Errorf("the upstream received the request %d times", n)
				}
			})
		}
		t.Run("te: trailers is allowed", func(t *testing.T) {
			t.Parallel()
			h := dialRawH2(t, addr, true)
			if err := h.get(1, "/te-trailers", hf("te", "trailers")); err != nil {
				t.Fatal(err)
			}
			if !h.waitFor(10*time.Second, func() bool { return h.streamDone(1) }) || h.snapshot(1).status != "200" {
				t.Errorf("stream got %+v (%s); want 200", h.snapshot(1), h.describe())
			}
		})
	})
	assertServes(t, gw, rec)
}

// TestAttackH2ConcurrentStreamLimit models stream exhaustion: a client opening more streams than
// the listener's maxConcurrentStreams. The limit must be advertised in SETTINGS and the excess
// streams refused before they reach the upstream; the connection keeps serving once streams end.
func TestAttackH2ConcurrentStreamLimit(t *testing.T) {
	t.Parallel()
	const limit = 4
	gw, rec := attackGateway(t, fmt.Sprintf("limits: {maxConcurrentStreams: %d}", limit))
	h := dialRawH2(t, listenerAddr(t, gw, "edge"), true)
	h.mu.Lock()
	adv, ok := h.settings[http2.SettingMaxConcurrentStreams]
	h.mu.Unlock()
	if !ok || adv != limit {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (present %v); want %d", adv, ok, limit)
	}
	const open = 2 * limit
	_, err := h.writeFlood(open, open, func(fr *http2.Framer, i int) error {
		block := h.encodeLocked(h.reqFields("GET", fmt.Sprintf("/hold/%d", i))...)
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: block, EndStream: true, EndHeaders: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	refused := func() int {
		n := 0
		for i := limit; i < open; i++ {
			if s := h.streams[uint32(2*i+1)]; s != nil && s.rst {
				n++
			}
		}
		return n
	}
	if !h.waitFor(10*time.Second, func() bool { return refused() == open-limit || h.ended() }) {
		t.Fatalf("%d of the %d excess streams were refused: %s", refused(), open-limit, h.describe())
	}
	waitFor(t, 10*time.Second, "the streams within the limit to reach the upstream", func() bool { return rec.holding.Load() == limit })
	for i := 0; i < open; i++ {
		s := h.snapshot(uint32(2*i + 1))
		switch {
		case i < limit && (s.rst || s.status != ""):
			t.Errorf("stream %d within the limit got %+v before the upstream answered", 2*i+1, s)
		case i >= limit && !(s.rst && (s.rstCode == http2.ErrCodeRefusedStream || s.rstCode == http2.ErrCodeProtocol)):
			t.Errorf("excess stream %d got %+v; want RST_STREAM REFUSED_STREAM or PROTOCOL_ERROR", 2*i+1, s)
		}
	}
	if n := len(rec.only("/hold")); n != limit {
		t.Errorf("the upstream received %d requests; want the %d within the limit", n, limit)
	}

	rec.releaseAll()
	for i := 0; i < limit; i++ {
		id := uint32(2*i + 1)
		if !h.waitFor(10*time.Second, func() bool { return h.streamDone(id) }) || h.snapshot(id).status != "200" {
			t.Errorf("stream %d got %+v after the upstream answered; want 200", id, h.snapshot(id))
		}
	}
	// The streams ended: new ones fit again.
	if err := h.get(2*open+1, "/after-limit"); err != nil {
		t.Fatal(err)
	}
	if !h.waitFor(10*time.Second, func() bool { return h.streamDone(2*open + 1) }) || h.snapshot(2*open+1).status != "200" {
		t.Errorf("a stream opened after the others ended got %+v (%s)", h.snapshot(2*open+1), h.describe())
	}
	assertServes(t, gw, rec)
}

// TestAttackH2CUpgrade models h2c smuggling: an HTTP/1.1 request carrying "Upgrade: h2c" and
// HTTP2-Settings, on a TLS and on a cleartext listener. A proxy that passes the upgrade on lets an
// upstream that accepts it switch the client's connection to HTTP/2 spoken directly to that
// upstream, past the proxy's routing and filters. The gateway must never answer 101: the request
// is served as plain HTTP/1.1 without the upgrade fields, or refused. The upstream here is a
// lenient one that switches whenever it is offered h2c.
func TestAttackH2CUpgrade(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t, t.TempDir(), "localhost")
	certFile, keyFile, pool := pki.Certs["localhost"].Cert, pki.Certs["localhost"].Key, pki.Pool
	rec := newRecorder()
	var upgraded atomic.Int64
	lenient := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(strings.ToLower(r.Header.Get("Upgrade")), "h2c") {
			upgraded.Add(1)
			c, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			_, _ = bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			_ = bw.Flush()
			_ = c.Close()
			return
		}
		rec.ServeHTTP(w, r)
	})
	gw := attackGatewayWith(t, fmt.Sprintf(`  - {name: edge, address: "127.0.0.1:0"}
  - name: secure
    address: "127.0.0.1:0"
    protocol: https
    tls: {certificates: [{cert: %q, key: %q}]}
`, certFile, keyFile), lenient)
	t.Cleanup(rec.releaseAll)

	dial := map[string]func(t *testing.T) net.Conn{
		"cleartext": func(t *testing.T) net.Conn {
			c, err := net.DialTimeout("tcp", listenerAddr(t, gw, "edge"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		"TLS": func(t *testing.T) net.Conn {
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", listenerAddr(t, gw, "secure"),
				&tls.Config{RootCAs: pool, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Errorf("ALPN chose %q; want http/1.1", p)
			}
			return c
		},
	}
	requests := map[string]string{
		"HTTP2-Settings named by Connection": "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
		"HTTP2-Settings not named":           "Connection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
		"h2c among other protocols":          "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: foo/1, h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
	}
	t.Run("attacks", func(t *testing.T) {
		var seq atomic.Int64
		for ln, dialFn := range dial {
			for rn, fields := range requests {
				t.Run(ln+"/"+rn, func(t *testing.T) {
					t.Parallel()
					c := dialFn(t)
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					path := fmt.Sprintf("/h2c/%d", seq.Add(1))
					req := "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n" + fields + "\r\n"
					if _, err := io.WriteString(c, req); err != nil {
						t.Fatal(err)
					}
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						t.Fatalf("reading the response: %v", err)
					}
					body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
					if resp.StatusCode == http.StatusSwitchingProtocols {
						t.Fatalf("the gateway switched protocols (101, Upgrade %q)", resp.Header.Get("Upgrade"))
					}
					if resp.StatusCode >= 500 {
						t.Errorf("status %d %q; want the request served as HTTP/1.1 or refused with 4xx", resp.StatusCode, body)
					}
					got := rec.only(path)
					for _, r := range got {
						if r.Header.Get("Upgrade") != "" || r.Header.Get("Http2-Settings") != "" {
							t.Errorf("the upstream received the upgrade fields: %v", r.Header)
						}
					}
					if resp.StatusCode == 200 && (len(got) != 1 || string(body) != "ok") {
						t.Errorf("answered 200 %q but the upstream received the request %d times", body, len(got))
					}
				})
			}
		}
	})
	if n := upgraded.Load(); n != 0 {
		t.Errorf("the upstream was offered h2c %d times", n)
	}
	assertServes(t, gw, rec)
}
