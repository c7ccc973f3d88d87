package http1

// Default limits applied when a Limits or ChunkLimits field is zero.
const (
	// DefaultMaxHeaderBytes is the default bound on a message head, start line included.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxHeaderCount is the default bound on the number of field lines in a head.
	DefaultMaxHeaderCount = 100
	// DefaultMaxExtensionBytes is the default bound on chunk-extension bytes on one chunk-size line.
	DefaultMaxExtensionBytes = 1024
	// DefaultMaxTrailerBytes is the default bound on a trailer section, final CRLF included.
	DefaultMaxTrailerBytes = 16 << 10
	// DefaultMaxTrailerCount is the default bound on the number of trailer fields.
	DefaultMaxTrailerCount = 32
	// MaxChunkSize is the largest chunk size the ChunkedReader accepts (1 TiB); larger sizes are
	// refused before they can overflow anything.
	MaxChunkSize = 1 << 40
	// maxHeadBytesCap caps MaxHeaderBytes so head offsets fit in int32.
	maxHeadBytesCap = 1 << 30
	// maxChunkOverhead bounds chunk-line bytes in excess of 16 bytes plus twice the chunk size,
	// accumulated over a body.
	maxChunkOverhead = 16 << 10
	// maxChunkSizeDigits bounds the hex digits (leading zeros included) of a chunk size.
	maxChunkSizeDigits = 16
)

// Limits bounds what ParseRequest and ParseResponse accept. The zero value uses the defaults.
type Limits struct {
	// MaxHeaderBytes bounds the whole head, start line, final CRLF and any skipped empty lines
	// before the request line included, in bytes. A longer head is refused with 431
	// header_too_large. Default 65536; at most 1 GiB.
	MaxHeaderBytes int
	// MaxHeaderCount bounds the number of field lines. More is refused with 431 too_many_headers.
	// Default 100.
	MaxHeaderCount int
	// AllowGetBody accepts GET and HEAD requests that declare a body (Content-Length above zero or
	// chunked). By default they are refused with 400 body_not_allowed: a back end that ignores such
	// a body would read it as the next request on a shared connection. Default false.
	AllowGetBody bool
}

func (l *Limits) maxBytes() int {
	if l.MaxHeaderBytes > 0 {
		return min(l.MaxHeaderBytes, maxHeadBytesCap)
	}
	return DefaultMaxHeaderBytes
}

func (l *Limits) maxCount() int {
	if l.MaxHeaderCount > 0 {
		return l.MaxHeaderCount
	}
	return DefaultMaxHeaderCount
}

// ChunkLimits bounds what a ChunkedReader accepts. The zero value uses the defaults.
type ChunkLimits struct {
	// MaxExtensionBytes bounds the chunk-extension bytes (everything after the size and before the
	// CRLF) on one chunk-size line. Default 1024.
	MaxExtensionBytes int
	// MaxTrailerBytes bounds the trailer section, final CRLF included, in bytes. Default 16384.
	MaxTrailerBytes int
	// MaxTrailerCount bounds the number of trailer fields. Default 32.
	MaxTrailerCount int
}

func (l ChunkLimits) withDefaults() ChunkLimits {
	if l.MaxExtensionBytes <= 0 {
		l.MaxExtensionBytes = DefaultMaxExtensionBytes
	}
	if l.MaxTrailerBytes <= 0 {
		l.MaxTrailerBytes = DefaultMaxTrailerBytes
	}
	if l.MaxTrailerCount <= 0 {
		l.MaxTrailerCount = DefaultMaxTrailerCount
	}
	return l
}
