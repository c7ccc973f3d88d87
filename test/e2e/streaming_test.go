package e2e

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// downstreamClients returns an HTTP/1.1 client and a client speaking cleartext HTTP/2 with prior
// knowledge, by name. Neither uses a proxy, follows redirects or gives up before the request's
// context does.
func downstreamClients() map[string]*http.Client {
	h2c := new(http.Protocols)
	h2c.SetUnencryptedHTTP2(true)
	h1 := new(http.Protocols)
	h1.SetHTTP1(true)
	return map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{Proxy: nil, Protocols: h1, ResponseHeaderTimeout: 5 * time.Second}},
		"h2c":      {Transport: &http.Transport{Proxy: nil, Protocols: h2c, ResponseHeaderTimeout: 5 * time.Second}},
	}
}

// gates holds one release channel per stream name, for upstream handlers that block until the
// test lets them go on.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// get returns the channel for name, creating it.
func (g *gates) get(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]chan struct{}{}
	}
	ch := g.m[name]
	if ch == nil {
		ch = make(chan struct{})
		g.m[name] = ch
	}
	return ch
}

// open releases the handler waiting on name; releasing twice is harmless.
func (g *gates) open(name string) {
	ch := g.get(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// openAll releases every handler.
func (g *gates) openAll() {
	g.mu.Lock()
	names := make([]string, 0, len(g.m))
	for name := range g.m {
		names = append(names, name)
	}
	g.mu.Unlock()
	for _, name := range names {
		g.open(name)
	}
}

// TestServerSentEvents checks that meshgate flushes a streamed response as the upstream does: the
// first event must reach the client while the upstream is still blocked before the second, over
// HTTP/1.1 and over HTTP/2.
func TestServerSentEvents(t *testing.T) {
	t.Parallel()
	var g gates
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release := g.get(r.URL.Query().Get("stream"))
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, "id: 1\ndata: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(15 * time.Second):
			return
		}
		_, _ = io.WriteString(w, "id: 2\ndata: second\n\n")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "id: 3\ndata: third\n\n")
	}))
	t.Cleanup(g.openAll) // runs before the upstream's Close, which waits for its handlers
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: events
    backends: [{service: events}]
    timeout: 0s
services:
  - name: events
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	for name, client := range downstreamClients() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer client.CloseIdleConnections()
			req, err := http.NewRequestWithContext(ctxTimeout(t, 20*time.Second), http.MethodGet, "http://"+public+"/events?stream="+name, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "text/event-stream")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("GET /events: %v", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("got %s with Content-Type %q, want 200 text/event-stream", resp.Status, resp.Header.Get("Content-Type"))
			}
			br := bufio.NewReader(resp.Body)
			first := make(chan string, 1)
			go func() {
				var ev strings.Builder
				for range 100 {
					line, err := br.ReadString('\n')
					ev.WriteString(line)
					if err != nil || line == "\n" {
						break
					}
				}
				first <- ev.String()
			}()
			select {
			case ev := <-first:
				if ev != "id: 1\ndata: first\n\n" {
					t.Fatalf("first event %q", ev)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("the first event did not arrive within 3s while the upstream held the stream open: meshgate buffers streamed responses")
			}
			g.open(name)
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("reading the rest of the stream: %v", err)
			}
			if want := "id: 2\ndata: second\n\nid: 3\ndata: third\n\n"; string(rest) != want {
				t.Fatalf("rest of the stream %q, want %q", rest, want)
			}
		})
	}
}

// TestChunkedTrailers checks that the trailer fields of a chunked upstream response reach a client
// that said it accepts trailers, over HTTP/1.1 (chunked) and over HTTP/2.
func TestChunkedTrailers(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum, X-Parts")
		w.Header().Set("Content-Type", "text/plain")
		for _, part := range []string{"alpha ", "beta ", "gamma"} {
			_, _ = io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "c0ffee")
		w.Header().Set("X-Parts", "3")
	}))
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
routes:
  - name: chunked
    backends: [{service: chunked}]
services:
  - name: chunked
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	for name, client := range downstreamClients() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			defer client.CloseIdleConnections()
			client.Timeout = requestTimeout
			resp, body := httpGet(t, client, "http://"+public+"/stream", http.Header{"Te": {"trailers"}})
			if resp.StatusCode != 200 || body != "alpha beta gamma" {
				t.Fatalf("got %d %q, want 200 \"alpha beta gamma\"", resp.StatusCode, body)
			}
			if name == "HTTP/1.1" {
				if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
					t.Fatalf("response over %s, want HTTP/1.1", resp.Proto)
				}
				if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
					t.Errorf("Transfer-Encoding %v, want chunked (trailers need it)", resp.TransferEncoding)
				}
			} else if resp.ProtoMajor != 2 {
				t.Fatalf("response over %s, want HTTP/2", resp.Proto)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "c0ffee" {
				t.Errorf("trailer X-Checksum = %q, want c0ffee (trailers: %v)", got, resp.Trailer)
			}
			if got := resp.Trailer.Get("X-Parts"); got != "3" {
				t.Errorf("trailer X-Parts = %q, want 3 (trailers: %v)", got, resp.Trailer)
			}
		})
	}
}
