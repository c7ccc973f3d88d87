package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

type chunkState uint8

const (
	stateSize chunkState = iota // expecting a chunk-size line
	stateData                   // inside chunk data
	stateCRLF                   // expecting the CRLF after chunk data
	stateDone                   // last chunk and trailer section consumed
)

// ChunkedReader decodes a chunked message body (RFC 9112 section 7.1) from a *bufio.Reader, strictly:
//
//   - chunk-size is 1 to 16 hex digits with no sign, prefix or white space, and at most MaxChunkSize;
//   - chunk extensions are allowed but must start with ";" (after optional white space), hold no
//     control characters and total at most ChunkLimits.MaxExtensionBytes per line; they are ignored,
//     and chunk lines may not outweigh chunk data by more than 16 KiB over a body (tiny chunks
//     with long extensions);
//   - every line ends in CRLF exactly, and chunk data is followed by CRLF exactly;
//   - the trailer section follows the same field rules as a head, within ChunkLimits. A trailer
//     naming a framing or routing field (Content-Length, Transfer-Encoding, Host, Trailer, TE,
//     Connection, Keep-Alive, Upgrade, Proxy-Connection) fails the body with bad_trailer; fields that
//     cannot apply after the content (authentication, Cookie, Set-Cookie, cache and range controls,
//     Content-Type, Content-Encoding, Content-Range, Expect, Max-Forwards, Pragma) are dropped.
//
// Read returns data from at most one chunk per call unless the next chunk line is already
// buffered, and returns io.EOF together with the last data when the end of the body is buffered.
// Errors are sticky: a *ParseError with Reason bad_chunk, bad_trailer, bad_header or
// too_many_headers, io.ErrUnexpectedEOF when the stream ends early, or the underlying read error.
type ChunkedReader struct {
	r       *bufio.Reader
	lim     ChunkLimits
	left    int64
	excess  int64 // chunk-line bytes not yet paid for by chunk data
	state   chunkState
	err     error
	trailer httpmsg.Header
	scratch []byte
}

// NewChunkedReader returns a ChunkedReader that decodes the chunked body at the current position
// of r, within lim (zero fields take the defaults).
func NewChunkedReader(r *bufio.Reader, lim ChunkLimits) *ChunkedReader {
	return &ChunkedReader{r: r, lim: lim.withDefaults()}
}

// Reset makes c decode a new chunked body from r, keeping its limits and scratch buffer, so a
// connection can reuse one ChunkedReader for every message. A Header returned by Trailer before
// Reset stays valid.
func (c *ChunkedReader) Reset(r *bufio.Reader) {
	c.r = r
	c.left = 0
	c.excess = 0
	c.state = stateSize
	c.err = nil
	c.trailer = nil
	c.scratch = c.scratch[:0]
}

// Trailer returns the trailer fields once Read has returned io.EOF, and nil before that or when
// the body had no trailer section.
func (c *ChunkedReader) Trailer() httpmsg.Header {
	if c.state != stateDone {
		return nil
	}
	return c.trailer
}

// Read implements io.Reader over the decoded body.
func (c *ChunkedReader) Read(p []byte) (n int, err error) {
	if c.err != nil {
		return 0, c.err
	}
	for n < len(p) {
		switch c.state {
		case stateSize:
			if n > 0 && !c.nextLineBuffered() {
				return n, nil
			}
			size, lineLen, err := c.readSizeLine()
			if err != nil {
				return n, c.fail(err)
			}
			// Bound framing overhead against data, so a body of tiny chunks with long extensions
			// cannot cost far more to read than its decoded size suggests.
			c.excess += int64(lineLen) - 16 - 2*size
			if c.excess < 0 {
				c.excess = 0
			}
			if c.excess > maxChunkOverhead {
				return n, c.fail(badChunk("too much chunk framing overhead"))
			}
			if size == 0 {
				if err := c.readTrailers(); err != nil {
					return n, c.fail(err)
				}
				c.state = stateDone
				c.err = io.EOF
				return n, io.EOF
			}
			c.left = size
			c.state = stateData
		case stateData:
			want := p[n:]
			if int64(len(want)) > c.left {
				want = want[:c.left]
			}
			m, err := c.r.Read(want)
			n += m
			c.left -= int64(m)
			if err != nil {
				return n, c.fail(err)
			}
			if c.left > 0 {
				return n, nil // do not block for the rest of the chunk
			}
			c.state = stateCRLF
		case stateCRLF:
			if n > 0 && c.r.Buffered() < 2 {
				return n, nil
			}
			if err := c.readCRLF(); err != nil {
				return n, c.fail(err)
			}
			c.state = stateSize
		default:
			return n, io.EOF
		}
	}
	return n, nil
}

func (c *ChunkedReader) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	c.err = err
	return err
}

// nextLineBuffered reports whether the next chunk line, and for the last chunk the whole trailer
// section, is already buffered, so reading it cannot block.
func (c *ChunkedReader) nextLineBuffered() bool {
	buf, _ := c.r.Peek(c.r.Buffered())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	last := false
	for _, d := range buf[:i] {
		if d != '0' {
			last = unhex(d) < 0 // only zeros before the first non-digit: the last chunk
			break
		}
	}
	if !last {
		return true
	}
	rest := buf[i+1:]
	return bytes.HasPrefix(rest, []byte("\r\n")) || bytes.Contains(rest, []byte("\r\n\r\n"))
}

// readSizeLine reads chunk-size [ chunk-ext ] CRLF and returns the size and the line length.
func (c *ChunkedReader) readSizeLine() (size int64, lineLen int, err error) {
	digits := 0
	var b byte
	for {
		if b, err = c.r.ReadByte(); err != nil {
			return 0, 0, err
		}
		v := unhex(b)
		if v < 0 {
			break
		}
		digits++
		if digits > maxChunkSizeDigits {
			return 0, 0, badChunk("chunk size has too many digits")
		}
		size = size<<4 | int64(v)
		if size > MaxChunkSize {
			return 0, 0, badChunk("chunk size too large")
		}
	}
	if digits == 0 {
		return 0, 0, badChunk("missing chunk size")
	}
	ext := 0
	if b != '\r' {
		// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
		semi := false
		for b != '\r' {
			switch {
			case b == ';':
				semi = true
			case isOWS(b):
			case !semi:
				return 0, 0, badChunk("invalid character after chunk size")
			case !valueChar[b]:
				return 0, 0, badChunk("invalid character in chunk extension")
			}
			ext++
			if ext > c.lim.MaxExtensionBytes {
				return 0, 0, badChunk("chunk extension too long")
			}
			if b, err = c.r.ReadByte(); err != nil {
				return 0, 0, err
			}
		}
		if !semi {
			return 0, 0, badChunk("white space after chunk size")
		}
	}
	if b, err = c.r.ReadByte(); err != nil {
		return 0, 0, err
	}
	if b != '\n' {
		return 0, 0, badChunk("bare CR in chunk line")
	}
	return size, digits + ext + 2, nil
}

func (c *ChunkedReader) readCRLF() error {
	b, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	if b != '\r' {
		return badChunk("missing CRLF after chunk data")
	}
	if b, err = c.r.ReadByte(); err != nil {
		return err
	}
	if b != '\n' {
		return badChunk("missing CRLF after chunk data")
	}
	return nil
}

// readTrailers reads the trailer section after the last chunk through its final CRLF.
func (c *ChunkedReader) readTrailers() error {
	if p, err := c.r.Peek(2); err == nil && p[0] == '\r' && p[1] == '\n' {
		_, _ = c.r.Discard(2)
		return nil
	}
	buf := c.scratch[:0]
	lineStart := 0
	for {
		frag, err := c.r.ReadSlice('\n')
		if len(buf)+len(frag) > c.lim.MaxTrailerBytes {
			return perr(400, ReasonBadTrailer, "trailer section too large")
		}
		buf = append(buf, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return err
		}
		line := buf[lineStart:]
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return badHeader("bare LF in trailer section")
		}
		if len(line) == 2 {
			break
		}
		lineStart = len(buf)
	}
	c.scratch = buf
	var spans fieldSpans
	end, count, err := scanFields(buf, 0, c.lim.MaxTrailerCount, &spans)
	if err == nil && end != len(buf) {
		err = badHeader("malformed trailer section")
	}
	if err != nil {
		if err == ErrIncomplete {
			err = badHeader("malformed trailer section")
		}
		return err
	}
	var h httpmsg.Header
	var fr framing
	if err := applyFields(string(buf), 0, count, &spans, modeTrailer, &h, &fr); err != nil {
		return err
	}
	c.trailer = h
	return nil
}

// ChunkedWriter encodes a chunked message body into a *bufio.Writer. Each non-empty Write becomes
// one chunk; Close or CloseWithTrailer writes the last chunk. It never flushes: the caller flushes
// the bufio.Writer when it wants bytes on the wire.
type ChunkedWriter struct {
	w      *bufio.Writer
	closed bool
}

// NewChunkedWriter returns a ChunkedWriter writing into w.
func NewChunkedWriter(w *bufio.Writer) *ChunkedWriter {
	return &ChunkedWriter{w: w}
}

// Reset makes cw write a new body into w.
func (cw *ChunkedWriter) Reset(w *bufio.Writer) {
	cw.w = w
	cw.closed = false
}

// Write writes p as one chunk. An empty p writes nothing (an empty chunk would end the body).
func (cw *ChunkedWriter) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, ErrWriteAfterClose
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := cw.writeSize(uint64(len(p))); err != nil {
		return 0, err
	}
	n, err := cw.w.Write(p)
	if err != nil {
		return n, err
	}
	if _, err := cw.w.WriteString("\r\n"); err != nil {
		return n, err
	}
	return n, nil
}

func (cw *ChunkedWriter) writeSize(n uint64) error {
	const hexDigits = "0123456789abcdef"
	shift := 60
	for shift > 0 && n>>shift == 0 {
		shift -= 4
	}
	for ; shift >= 0; shift -= 4 {
		if err := cw.w.WriteByte(hexDigits[n>>shift&0xf]); err != nil {
			return err
		}
	}
	_, err := cw.w.WriteString("\r\n")
	return err
}

// Close writes the last chunk and an empty trailer section.
func (cw *ChunkedWriter) Close() error {
	return cw.CloseWithTrailer(nil)
}

// CloseWithTrailer writes the last chunk followed by the fields of h as the trailer section. The
// fields are written as given: the caller keeps framing and routing fields out of h and validates
// untrusted names and values (ValidFieldName, ValidFieldValue). Closing twice is an error.
func (cw *ChunkedWriter) CloseWithTrailer(h httpmsg.Header) error {
	if cw.closed {
		return ErrWriteAfterClose
	}
	cw.closed = true
	if _, err := cw.w.WriteString("0\r\n"); err != nil {
		return err
	}
	for i := range h {
		for _, s := range [...]string{h[i].Name, ": ", h[i].Value, "\r\n"} {
			if _, err := cw.w.WriteString(s); err != nil {
				return err
			}
		}
	}
	_, err := cw.w.WriteString("\r\n")
	return err
}
