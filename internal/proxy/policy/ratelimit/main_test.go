package ratelimit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
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

// redisServer is a redis-server child process on a loopback port.
type redisServer struct {
	t    *testing.T
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	out  *logBuffer
}

// startRedis starts redis-server on a free loopback port without persistence, with extra
// arguments, waits until it answers PING and kills it when the test ends.
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is not installed: run scripts/test-deps")
	}
	var last string
	for range 3 { // another process may take the port between finding and binding it
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, extra...)
		r := &redisServer{t: t, addr: addr, cmd: exec.Command(bin, args...), done: make(chan struct{}), out: &logBuffer{}}
		r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		go func() { _ = r.cmd.Wait(); close(r.done) }()
		t.Cleanup(r.kill)
		if r.waitPing(5 * time.Second) {
			return r
		}
		last = r.out.String()
		r.kill()
	}
	t.Fatalf("redis-server did not answer PING:\n%s", last)
	return nil
}

// waitPing reports whether the server answered PING within d.
func (r *redisServer) waitPing(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return false
		default:
		}
		if r.ping() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// ping sends PING and reports whether PONG (or NOAUTH, for a server with a password) came back.
func (r *redisServer) ping() bool {
	c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// kill kills the server and waits for it; killing it again does nothing.
func (r *redisServer) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	_ = r.cmd.Process.Kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		r.t.Errorf("redis-server on %s did not exit after SIGKILL", r.addr)
	}
}

// pause stops the server (SIGSTOP): it keeps its connections and port but answers nothing.
func (r *redisServer) pause() { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }

// resume lets a paused server go on.
func (r *redisServer) resume() { _ = r.cmd.Process.Signal(syscall.SIGCONT) }

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
