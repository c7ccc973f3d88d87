package listener

import (
	"bufio"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestIsH2Preface feeds the sniffer bytes in pieces over a real connection and checks it decides
// without waiting for bytes that will not come.
func TestIsH2Preface(t *testing.T) {
	for _, tc := range []struct {
		desc   string
		pieces []string
		want   bool
	}{
		{"short HTTP/1.0 request", []string{"GET / HTTP/1.0\r\n\r\n"}, false},
		{"PUT shares the first byte", []string{"PUT / HTTP/1.0\r\n\r\n"}, false},
		{"PRI method that is not the preface", []string{"PRI / HTTP/1.1\r\nHost: a\r\n\r\n"}, false},
		{"preface in one piece", []string{http2.ClientPreface}, true},
		{"preface byte by byte", splitBytes(http2.ClientPreface), true},
		{"preface then frames", []string{http2.ClientPreface + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"}, true},
		{"divergence after a pause", []string{"PR", "X / HTTP/1.1\r\n\r\n"}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			go func() {
				for _, p := range tc.pieces {
					if _, err := client.Write([]byte(p)); err != nil {
						return
					}
					time.Sleep(time.Millisecond)
				}
			}()
			done := make(chan bool, 1)
			go func() { done <- isH2Preface(bufio.NewReader(server)) }()
			select {
			case got := <-done:
				if got != tc.want {
					t.Fatalf("isH2Preface = %v, want %v", got, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("isH2Preface waited for bytes that were never sent")
			}
		})
	}
}

func splitBytes(s string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s[i : i+1]
	}
	return out
}
