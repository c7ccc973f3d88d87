package ratelimit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
	"github.com/meshgate/meshgate/internal/testredis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a proxy.ResponseWriter that keeps what was written.
type recorder struct {
	head *httpmsg.Response
	body bytes.Buffer
	done bool
}

// WriteHead implements proxy.ResponseWriter.
func (r *recorder) WriteHead(resp *httpmsg.Response) error {
	if r.head != nil {
		return errors.New("recorder: head written twice")
	}
	c := *resp
	c.Header = resp.Header.Clone()
	r.head = &c
	return nil
}

// Write implements proxy.ResponseWriter.
func (r *recorder) Write(p []byte) (int, error) { return r.body.Write(p) }

// Flush implements proxy.ResponseWriter.
func (r *recorder) Flush() error { return nil }

// Finish implements proxy.ResponseWriter.
func (r *recorder) Finish(httpmsg.Header) error { r.done = true; return nil }

// HeadWritten implements proxy.ResponseWriter.
func (r *recorder) HeadWritten() bool { return r.head != nil }

// Hijack implements proxy.ResponseWriter.
func (r *recorder) Hijack() (net.Conn, *bufio.Reader, error) { return nil, nil, proxy.ErrNotHijackable }

// header returns the value of field name of the recorded head, or "".
func (r *recorder) header(name string) string {
	if r.head == nil {
		return ""
	}
	return r.head.Header.Value(name)
}

// newExchange returns a GET exchange from client ip with the given header fields (name, value
// pairs) and a recorder as its writer.
func newExchange(ip string, fields ...string) (*proxy.Exchange, *recorder) {
	rec := &recorder{}
	x := &proxy.Exchange{
		Ctx:      context.Background(),
		W:        rec,
		ClientIP: netip.MustParseAddr(ip),
		Req:      httpmsg.Request{Method: "GET", Path: "/", Target: "/"},
	}
	for i := 0; i+1 < len(fields); i += 2 {
		x.Req.Header = append(x.Req.Header, httpmsg.Field{Name: fields[i], Value: fields[i+1]})
	}
	return x, rec
}

// upstream stands for the rest of the chain: it answers 200 through the exchange's response edits,
// as the upstream transport does.
var upstream = proxy.HandlerFunc(func(x *proxy.Exchange) error {
	resp := &httpmsg.Response{Status: 200, Header: httpmsg.Header{{Name: "Content-Type", Value: "text/plain"}}}
	for _, edit := range x.ResponseEdits {
		edit(resp)
	}
	x.Status = 200
	if err := x.W.WriteHead(resp); err != nil {
		return err
	}
	return x.W.Finish(nil)
})

// serve runs x through the limiter's middleware in front of upstream and answers a returned error
// the way the engine does.
func serve(l *Limiter, x *proxy.Exchange) {
	if err := l.Middleware()(upstream).Serve(x); err != nil {
		_ = proxy.RespondError(x, err)
	}
}

// fakeClock is a settable clock for a Store.
type fakeClock struct {
	mu  sync.Mutex
	now int64
}

// read returns the time.
func (c *fakeClock) read() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// advance moves the clock on by d.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += int64(d)
}

// decisions counts the decisions a Store reports, per route and decision.
type decisions struct {
	mu sync.Mutex
	n  map[string]int
}

// record is an Options.OnDecision.
func (d *decisions) record(route, decision string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == nil {
		d.n = map[string]int{}
	}
	d.n[route+" "+decision]++
}

// count returns how often route got decision.
func (d *decisions) count(route, decision string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[route+" "+decision]
}

// logBuffer is a slog handler's output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestLogger returns a logger writing text to a buffer.
func newTestLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// startRedis starts a real redis-server on a loopback port for the test (see testredis).
func startRedis(t *testing.T, extra ...string) *testredis.Server {
	t.Helper()
	return testredis.Start(t, extra...)
}

// waitGoroutinesGone waits up to d until no goroutine's stack mentions fn: the Redis client
// library probes a dead server from a goroutine that notices its client closed only after its
// current one-second pause.
func waitGoroutinesGone(t *testing.T, fn string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if !bytes.Contains(buf[:n], []byte(fn)) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("a goroutine in %s is still running after %v", fn, d)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// itoa formats n.
func itoa(n int) string { return strconv.Itoa(n) }
