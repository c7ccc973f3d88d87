package httpmsg

// Proto is an HTTP protocol version.
type Proto uint8

// Protocol versions.
const (
	HTTP10 Proto = iota + 1
	HTTP11
	HTTP2
)

// String returns the version as written on an HTTP/1 start line ("HTTP/1.1") or "HTTP/2".
func (p Proto) String() string {
	switch p {
	case HTTP10:
		return "HTTP/1.0"
	case HTTP11:
		return "HTTP/1.1"
	case HTTP2:
		return "HTTP/2"
	}
	return "HTTP/?"
}

// Request is a request head. Body framing is described, not carried: the transport that parsed the
// head owns the body stream.
type Request struct {
	// Method is the request method, for example "GET".
	Method string
	// Target is the request-target exactly as received (origin-form, absolute-form, authority-form or "*").
	Target string
	// Path is the path part of Target, still percent-encoded and not normalised.
	Path string
	// Query is the query part of Target without the leading '?', or "".
	Query string
	// Host is the authority the request is for: the Host header (HTTP/1) or :authority (HTTP/2),
	// as received (it may carry a port).
	Host string
	// Proto is the protocol version the request arrived with.
	Proto Proto
	// Header holds the header fields in arrival order.
	Header Header
	// ContentLength is the body length in bytes when the framing declares one, 0 for no body, or -1
	// when the length is unknown (chunked, or an HTTP/2 stream without content-length).
	ContentLength int64
	// Chunked reports that the body uses the chunked transfer coding (HTTP/1 only).
	Chunked bool
	// Close reports that the client asked to close the connection after this exchange.
	Close bool
	// Upgrade holds the protocol named by Upgrade when Connection also lists "upgrade", or "".
	Upgrade string
	// Expect100 reports "Expect: 100-continue".
	Expect100 bool
}

// Response is a response head.
type Response struct {
	// Status is the status code.
	Status int
	// Reason is the reason phrase as received; it may be empty.
	Reason string
	// Proto is the protocol version the response arrived with.
	Proto Proto
	// Header holds the header fields in arrival order.
	Header Header
	// ContentLength is the body length when declared, or -1 when unknown (chunked or
	// close-delimited). It is 0 for responses that cannot have a body (1xx, 204, 304, HEAD).
	ContentLength int64
	// Chunked reports that the body uses the chunked transfer coding (HTTP/1 only).
	Chunked bool
	// Close reports that the connection closes after this response.
	Close bool
}

// BodyAllowed reports whether a response with this status to a request with this method may carry a
// body (RFC 9110 section 6.4.1).
func BodyAllowed(method string, status int) bool {
	if method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304 {
		return false
	}
	return true
}
