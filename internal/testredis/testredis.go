// Package testredis runs a real redis-server child process for tests: on a free loopback port,
// without persistence, killed when the test ends. It is imported only by tests.
package testredis

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a redis-server child process.
type Server struct {
	// Addr is the host:port the server listens on.
	Addr string

	t    testing.TB
	cmd  *exec.Cmd
	done chan struct{}
	out  *buffer
}

// Start starts redis-server with the extra arguments, waits until it answers PING and kills it
// when the test ends. The test fails when redis-server is not installed (scripts/test-deps
// installs it).
func Start(t testing.TB, extra ...string) *Server {
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
		s := &Server{Addr: addr, t: t, cmd: exec.Command(bin, args...), done: make(chan struct{}), out: &buffer{}}
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		t.Cleanup(s.Kill)
		if s.waitPing(5 * time.Second) {
			return s
		}
		last = s.out.String()
		s.Kill()
	}
	t.Fatalf("redis-server did not answer PING:\n%s", last)
	return nil
}

// Output returns what the server printed so far.
func (s *Server) Output() string { return s.out.String() }

// waitPing reports whether the server answered PING within d.
func (s *Server) waitPing(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		if s.Ping() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// Ping sends PING and reports whether PONG (or NOAUTH, for a server with a password) came back.
func (s *Server) Ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
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

// Kill kills the server and waits for it; killing it again does nothing.
func (s *Server) Kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("redis-server on %s did not exit after SIGKILL", s.Addr)
	}
}

// Pause stops the server (SIGSTOP): it keeps its connections and port but answers nothing.
func (s *Server) Pause() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume lets a paused server go on.
func (s *Server) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

// buffer is a bytes.Buffer safe for concurrent writers and readers.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
