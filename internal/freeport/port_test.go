package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestLoopback(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		a, err := Loopback()
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
		_, p, _ := net.SplitHostPort(a)
		if n, _ := strconv.Atoi(p); n < lowest || n >= ephemeralStart() && ephemeralStart()-lowest > 1000 {
			t.Fatalf("port %d outside [%d, %d)", n, lowest, ephemeralStart())
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("bind %s: %v", a, err)
		}
		_ = ln.Close()
	}
}
