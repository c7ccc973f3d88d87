package proxy

import (
	"bufio"
	"errors"
	"net"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ErrNotHijackable is returned by Hijack on transports that cannot hand over the raw connection
// (HTTP/2).
var ErrNotHijackable = errors.New("proxy: connection cannot be hijacked")

// ResponseWriter sends one response downstream. Each transport (HTTP/1, HTTP/2) implements it.
type ResponseWriter interface {
	// WriteHead sends the status line and header fields. The writer owns framing: it derives
	// Content-Length, Transfer-Encoding and Connection from resp.ContentLength and the protocol, and
	// ignores such fields in resp.Header. A 1xx status other than 101 may be written before the final
	// head.
	WriteHead(resp *httpmsg.Response) error
	// Write sends body bytes. Calling it before WriteHead is an error.
	Write(p []byte) (int, error)
	// Flush pushes buffered bytes to the client now.
	Flush() error
	// Finish ends the response, sending trailer fields when the protocol can carry them (HTTP/2, or
	// HTTP/1.1 chunked). trailer may be nil.
	Finish(trailer httpmsg.Header) error
	// HeadWritten reports whether WriteHead has sent a final (non-1xx) head.
	HeadWritten() bool
	// Hijack takes over the raw connection after a 101 response was written, for tunnelling an
	// upgraded protocol. The returned reader holds bytes the client sent after the request head.
	Hijack() (net.Conn, *bufio.Reader, error)
}
