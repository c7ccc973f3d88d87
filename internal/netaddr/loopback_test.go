package netaddr

import "testing"

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:15000": true, "127.9.9.9:1": true, "[::1]:80": true, "localhost:9901": true,
		"0.0.0.0:15000": false, "[::]:80": false, "10.0.0.1:80": false, ":80": false,
		"example.com:80": false, "127.0.0.1": false, "": false,
	} {
		if got := IsLoopbackAddr(addr); got != want {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
