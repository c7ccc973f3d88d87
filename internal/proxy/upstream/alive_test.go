package upstream

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestAlive checks the idle-connection probe against real sockets: a quiet open connection is
// alive; one the peer closed, or one with unexpected bytes waiting, is not.
func TestAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		desc string
		peer func(c net.Conn) // what the upstream does with its end
		want bool
	}{
		{"open and quiet", func(net.Conn) {}, true},
		{"closed by the upstream", func(c net.Conn) { c.Close() }, false},
		{"unexpected bytes", func(c net.Conn) { c.Write([]byte("HTTP/1.1 200 OK\r\n")) }, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			peer, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			tc.peer(peer)
			uc := &upConn{c: c, br: bufio.NewReader(c)}
			// The peer's close or bytes take a moment to arrive; the answer must settle on want.
			deadline := time.Now().Add(2 * time.Second)
			for uc.alive() != tc.want {
				if time.Now().After(deadline) {
					t.Fatalf("alive() = %v, want %v", !tc.want, tc.want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tc.want {
				time.Sleep(50 * time.Millisecond)
				if !uc.alive() {
					t.Fatal("a quiet open connection turned dead")
				}
			}
		})
	}
}
