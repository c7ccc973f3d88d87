package http1

import (
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// fieldMode selects how applyFields treats the fields that matter to framing and routing.
type fieldMode uint8

const (
	modeRequest fieldMode = iota
	modeResponse
	modeTrailer
)

// framing collects the fields that decide message framing and connection handling.
type framing struct {
	host          string
	hostCount     int
	clCount       int
	cl            int64
	teCount       int
	te            string
	upgrade       string
	connClose     bool
	connKeepAlive bool
	connUpgrade   bool
	expect100     bool
}

// fieldSpan locates one field line's name and value (OWS trimmed) within a head.
type fieldSpan struct{ ns, ne, vs, ve int32 }

// spanCap is how many field spans scanFields records; heads with more fields are split again by
// splitField in the semantic pass.
const spanCap = 32

// fieldSpans is the scratch array the syntax pass fills; it lives on the parser's stack.
type fieldSpans [spanCap]fieldSpan

// scanFields is the syntax pass over the field lines of a head or trailer section. b may end
// anywhere: ErrIncomplete means more bytes are needed. It validates every line (token name, colon
// without preceding white space, field-vchar/SP/HTAB value, CRLF) up to and including the empty
// line, records the first spanCap field spans, and returns the offset just past the section and
// the number of fields.
func scanFields(b []byte, pos, maxCount int, spans *fieldSpans) (end, count int, err error) {
	for {
		if pos >= len(b) {
			return 0, 0, ErrIncomplete
		}
		if b[pos] == '\r' {
			if pos+1 >= len(b) {
				return 0, 0, ErrIncomplete
			}
			if b[pos+1] != '\n' {
				return 0, 0, badHeader("bare CR in header section")
			}
			return pos + 2, count, nil
		}
		// field-name ":"
		k := scanToken(b, pos)
		if k >= len(b) {
			return 0, 0, ErrIncomplete
		}
		if b[k] != ':' {
			switch {
			case pos == k && isOWS(b[pos]):
				return 0, 0, badHeader("obsolete line folding or leading white space")
			case isOWS(b[k]):
				return 0, 0, badHeader("white space between field name and colon")
			case b[k] == '\n':
				return 0, 0, badHeader("bare LF in header section")
			case b[k] == '\r':
				return 0, 0, badHeader("field line without colon")
			}
			return 0, 0, badHeader("invalid character in field name")
		}
		if k == pos {
			return 0, 0, badHeader("empty field name")
		}
		ns, ne := pos, k
		// OWS field-value OWS CRLF
		k++
		for k < len(b) && isOWS(b[k]) {
			k++
		}
		vs := k
		k = scanValue(b, k)
		if k >= len(b) {
			return 0, 0, ErrIncomplete
		}
		if b[k] != '\r' {
			if b[k] == '\n' {
				return 0, 0, badHeader("bare LF in header section")
			}
			return 0, 0, badHeader("invalid character in field value")
		}
		if k+1 >= len(b) {
			return 0, 0, ErrIncomplete
		}
		if b[k+1] != '\n' {
			return 0, 0, badHeader("bare CR in field value")
		}
		ve := k
		for ve > vs && isOWS(b[ve-1]) {
			ve--
		}
		if count++; count > maxCount {
			return 0, 0, perr(431, ReasonTooManyHeaders, "too many header fields")
		}
		if count <= spanCap {
			spans[count-1] = fieldSpan{int32(ns), int32(ne), int32(vs), int32(ve)}
		}
		pos = k + 2
	}
}

// splitField splits the field line at pos of a head that scanFields accepted, and returns its span
// and the offset of the next line.
func splitField(s string, pos int) (fieldSpan, int) {
	ne := pos + indexByte(s[pos:], ':')
	vs := ne + 1
	for isOWS(s[vs]) {
		vs++
	}
	cr := vs + indexByte(s[vs:], '\r')
	ve := cr
	for ve > vs && isOWS(s[ve-1]) {
		ve--
	}
	return fieldSpan{int32(pos), int32(ne), int32(vs), int32(ve)}, cr + 2
}

// applyFields is the semantic pass: it slices every field from s (the head as a string, offsets as
// in the syntax pass), handles the framing and routing fields, and appends the rest to h. Host (in
// requests) is recorded in fr and not appended. first is the offset of the first field line.
func applyFields(s string, first, count int, spans *fieldSpans, mode fieldMode, h *httpmsg.Header, fr *framing) error {
	next := first
	for i := 0; i < count; i++ {
		var sp fieldSpan
		if count <= spanCap {
			sp = spans[i]
		} else {
			sp, next = splitField(s, next)
		}
		name := s[sp.ns:sp.ne]
		value := s[sp.vs:sp.ve]

		if mode == modeTrailer {
			keep, err := checkTrailerField(name)
			if err != nil {
				return err
			}
			if keep {
				*h = append(*h, httpmsg.Field{Name: name, Value: value})
			}
			continue
		}

		known := false
		switch len(name) {
		case 4:
			if mode == modeRequest && httpmsg.EqualFold(name, "host") {
				fr.hostCount++
				if fr.hostCount > 1 {
					return badHost("multiple Host fields")
				}
				fr.host = value
				continue // carried in Request.Host, not in Header
			}
		case 6:
			if httpmsg.EqualFold(name, "expect") {
				fr.expect100 = fr.expect100 || httpmsg.EqualFold(value, "100-continue")
			}
		case 7:
			if fr.upgrade == "" && httpmsg.EqualFold(name, "upgrade") {
				fr.upgrade = value
			}
		case 10:
			if httpmsg.EqualFold(name, "connection") {
				fr.scanConnection(value)
			}
		case 14:
			if httpmsg.EqualFold(name, "content-length") {
				known = true
				fr.clCount++
				n, ok := parseContentLength(value)
				if !ok {
					return perr(400, ReasonBadContentLength, "invalid Content-Length value")
				}
				if fr.clCount > 1 {
					return ambiguous("multiple Content-Length fields")
				}
				fr.cl = n
			}
		case 17:
			if httpmsg.EqualFold(name, "transfer-encoding") {
				known = true
				fr.teCount++
				if fr.teCount > 1 {
					return ambiguous("multiple Transfer-Encoding fields")
				}
				fr.te = value
			}
		}
		if !known && len(name) >= len("contentlength") && resemblesFramingField(name) {
			return badHeader("field name imitates Content-Length or Transfer-Encoding")
		}
		*h = append(*h, httpmsg.Field{Name: name, Value: value})
	}
	return nil
}

// scanConnection records the close, keep-alive and upgrade options of a Connection value.
func (fr *framing) scanConnection(v string) {
	for v != "" {
		var opt string
		if i := indexByte(v, ','); i >= 0 {
			opt, v = v[:i], v[i+1:]
		} else {
			opt, v = v, ""
		}
		opt = trimOWS(opt)
		switch len(opt) {
		case 5:
			fr.connClose = fr.connClose || httpmsg.EqualFold(opt, "close")
		case 7:
			fr.connUpgrade = fr.connUpgrade || httpmsg.EqualFold(opt, "upgrade")
		case 10:
			fr.connKeepAlive = fr.connKeepAlive || httpmsg.EqualFold(opt, "keep-alive")
		}
	}
}

// parseContentLength parses 1*DIGIT into a non-negative int64, refusing signs, lists, white space
// inside the value and overflow.
func parseContentLength(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// checkTransferEncoding accepts exactly one coding, "chunked" (any case). Otherwise: chunked
// repeated, not final or with parameters is ambiguous (400, RFC 9112 section 6.3); a valid list
// ending in chunked, or one without chunked, names codings we do not implement (501); anything that
// is not a list of tokens is malformed (400).
func checkTransferEncoding(v string) error {
	if httpmsg.EqualFold(v, "chunked") {
		return nil
	}
	if v == "" {
		return perr(400, ReasonBadTransferEncoding, "empty Transfer-Encoding")
	}
	chunked, lastChunked, params := 0, false, false
	for v != "" {
		var elem string
		if i := indexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, ""
		}
		hasParams := false
		if i := indexByte(elem, ';'); i >= 0 {
			elem, hasParams = elem[:i], true
		}
		elem = trimOWS(elem)
		if !ValidFieldName(elem) { // a transfer-coding name is a token
			return perr(400, ReasonBadTransferEncoding, "invalid transfer coding")
		}
		lastChunked = httpmsg.EqualFold(elem, "chunked")
		if lastChunked {
			chunked++
			params = params || hasParams
		}
	}
	switch {
	case chunked > 1:
		return ambiguous("chunked applied more than once")
	case chunked == 1 && !lastChunked:
		return ambiguous("chunked is not the final transfer coding")
	case params:
		return ambiguous("parameters on the chunked transfer coding")
	}
	return perr(501, ReasonUnsupportedTransferCoding, "unsupported transfer coding")
}

// resemblesFramingField reports whether name spells content-length or transfer-encoding once
// everything but letters is ignored (Transfer_Encoding, Content---Length). Call it only for names
// that are not exactly those fields.
func resemblesFramingField(name string) bool {
	return skeletonEqual(name, "transferencoding") || skeletonEqual(name, "contentlength")
}

func skeletonEqual(name, letters string) bool {
	j := 0
	for i := 0; i < len(name); i++ {
		c := name[i] | 0x20
		if c < 'a' || c > 'z' {
			continue
		}
		if j >= len(letters) || c != letters[j] {
			return false
		}
		j++
	}
	return j == len(letters)
}

// Trailer fields that are refused: they decide framing or routing, which is settled before the
// body, so a trailer carrying one is at best useless and at worst a smuggling attempt.
var trailerRefused = [...]string{
	"content-length", "transfer-encoding", "host", "trailer", "te", "connection",
	"keep-alive", "upgrade", "proxy-connection",
}

// Trailer fields that are dropped silently: authentication, request modifiers, response controls
// and content format, which cannot be applied after the content (RFC 9110 section 6.5.1).
var trailerDropped = [...]string{
	"authorization", "proxy-authorization", "proxy-authenticate", "www-authenticate",
	"cookie", "set-cookie", "cache-control", "expect", "max-forwards", "pragma", "range",
	"content-encoding", "content-type", "content-range",
}

// checkTrailerField reports whether a trailer field is kept, or an error when it is refused.
func checkTrailerField(name string) (keep bool, err error) {
	for _, f := range trailerRefused {
		if httpmsg.EqualFold(name, f) {
			return false, perr(400, ReasonBadTrailer, "framing or routing field in trailer section")
		}
	}
	if resemblesFramingField(name) {
		return false, badHeader("field name imitates Content-Length or Transfer-Encoding")
	}
	for _, f := range trailerDropped {
		if httpmsg.EqualFold(name, f) {
			return false, nil
		}
	}
	return true, nil
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
