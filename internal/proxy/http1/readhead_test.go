package http1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// TestReadHead reads heads that arrive in pieces over a real connection, including heads that do
// not fit the reader's buffer, and checks that ReadHead returns instead of waiting or spinning.
func TestReadHead(t *testing.T) {
	big := "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + strings.Repeat("c", 8000) + "\r\n\r\n"
	for _, tc := range []struct {
		desc    string
		pieces  []string
		bufSize int
		wantErr error
		wantN   int
	}{
		{"one piece", []string{"GET / HTTP/1.1\r\nHost: a\r\n\r\n"}, 4096, nil, 27},
		{"byte by byte", strings.Split("GET / HTTP/1.1\r\nHost: a\r\n\r\n", ""), 4096, nil, 27},
		{"larger than the buffer", []string{big}, 4096, ErrHeadTooLarge, 0},
		{"fits a larger buffer", []string{big}, 16384, nil, len(big)},
		{"closed mid-head", []string{"GET / HTTP/1.1\r\nHo"}, 4096, io.EOF, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			client, server := net.Pipe()
			defer server.Close()
			go func() {
				for _, p := range tc.pieces {
					if _, err := client.Write([]byte(p)); err != nil {
						break
					}
				}
				client.Close()
			}()
			br := bufio.NewReaderSize(server, tc.bufSize)
			var req httpmsg.Request
			type result struct {
				n   int
				err error
			}
			done := make(chan result, 1)
			go func() {
				n, err := ReadHead(br, func(b []byte) (int, error) { return ParseRequest(b, Limits{}, &req) })
				done <- result{n, err}
			}()
			select {
			case r := <-done:
				if tc.wantErr != nil {
					if !errors.Is(r.err, tc.wantErr) {
						t.Fatalf("err = %v, want %v", r.err, tc.wantErr)
					}
					return
				}
				if r.err != nil || r.n != tc.wantN {
					t.Fatalf("ReadHead = %d, %v; want %d, nil", r.n, r.err, tc.wantN)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ReadHead did not return")
			}
		})
	}
}
