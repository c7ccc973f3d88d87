package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestListenerSheds: beyond maxConnections a listener closes new connections at once (counted)
// instead of leaving them queued, and serves again once a connection closes.
func TestListenerSheds(t *testing.T) {
	t.Parallel()
	e := startUpstream(t, "echo", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners:
  - {name: edge, address: "127.0.0.1:0", limits: {maxConnections: 2}}
routes:
  - name: all
    backends: [{service: echo}]
services:
  - name: echo
    endpoints: [{address: %q}]
`, e.Addr))
	addr := listenerAddr(t, gw, "edge")
	open := func() (net.Conn, error) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return nil, err
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			c.Close()
			return nil, err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return c, nil
	}
	held := make([]net.Conn, 0, 2)
	for range 2 {
		c, err := open()
		if err != nil {
			t.Fatalf("a connection within the limit: %v", err)
		}
		held = append(held, c)
	}
	if c, err := open(); err == nil {
		c.Close()
		t.Fatal("a third connection was served beyond maxConnections 2")
	}
	if got := testutil.ToFloat64(gw.Metrics().DownstreamShed.WithLabelValues("edge")); got < 1 {
		t.Errorf("shed connections counted: %v", got)
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := open()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection served after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	held[1].Close()
}
