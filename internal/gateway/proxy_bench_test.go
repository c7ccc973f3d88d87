package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// rawOrigin is a minimal keep-alive HTTP/1.1 origin that answers every request with the same bytes.
// It allocates nothing per request, so a benchmark's allocations are the proxy's.
func rawOrigin(b *testing.B, body []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := append([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"), body...)
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					// Requests in this benchmark have no body: a head ends with an empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func benchGateway(b *testing.B, origin string) (*gateway.Gateway, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: public, address: %q}]
routes:
  - name: api
    match: [{path: {prefix: /api}}]
    filters:
      - requestHeaders: {set: {x-team: bench}}
      - responseHeaders: {set: {x-served-by: meshgate}}
    backends: [{service: origin}]
services:
  - name: origin
    endpoints: [{address: %q}]
`, addr, origin)
	gw := gateway.New(slog.New(slog.DiscardHandler), metrics.New())
	if _, err := gw.LoadBytes("bench.yaml", []byte(cfg)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = gw.Shutdown(b.Context()) })
	return gw, addr
}

// BenchmarkProxyHTTP1 measures one whole proxied HTTP/1.1 keep-alive request through real
// loopback sockets: client → meshgate (routing, filters, forwarding headers, metrics) → origin and
// back. The client and origin allocate nothing per request, so allocs/op is meshgate's.
func BenchmarkProxyHTTP1(b *testing.B) {
	for _, size := range []int{3, 16 << 10} {
		b.Run("body="+strconv.Itoa(size), func(b *testing.B) {
			origin := rawOrigin(b, bytes.Repeat([]byte("x"), size))
			_, addr := benchGateway(b, origin)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /api/users/7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			br := bufio.NewReaderSize(c, 32<<10)
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := -1
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						b.Fatal(err)
					}
					if len(line) <= 2 {
						break
					}
					if bytes.HasPrefix(line, []byte("Content-Length: ")) {
						n, _ = strconv.Atoi(string(bytes.TrimSpace(line[16:])))
					}
				}
				if n != size {
					b.Fatalf("content-length %d, want %d", n, size)
				}
				if _, err := br.Discard(n); err != nil {
					b.Fatal(err)
				}
			}
			for range 100 { // warm the pools
				roundTrip()
			}
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}
