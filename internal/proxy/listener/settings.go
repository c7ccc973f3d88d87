// Package listener accepts downstream connections and speaks HTTP on them: meshgate's own HTTP/1.1
// server (strict parsing, pooled per-connection state, no per-request goroutine) and HTTP/2 through
// golang.org/x/net/http2, over cleartext or TLS with SNI certificates and ALPN.
package listener

import (
	"crypto/tls"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
)

// Settings are the parts of a listener's config that a reload may change without rebinding.
type Settings struct {
	// ReadHeaderTimeout bounds reading one request head.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle for this long.
	IdleTimeout time.Duration
	// RequestTimeout bounds a whole exchange unless the route overrides it.
	RequestTimeout time.Duration
	// Limits bound request heads.
	Limits http1.Limits
	// MaxBodyBytes bounds request bodies; -1 is no limit.
	MaxBodyBytes int64
	// MaxConnections is the most connections served at once.
	MaxConnections int
	// MaxConcurrentStreams bounds HTTP/2 streams per connection.
	MaxConcurrentStreams uint32
	// TLS is the server TLS config for https listeners, nil otherwise.
	TLS *tls.Config
}

// Handler serves exchanges. It always completes the exchange: on failure it writes the error
// response itself, or, when a response was already under way, leaves x.Err set so the transport
// aborts the stream.
type Handler interface {
	ServeExchange(x *proxy.Exchange)
}
