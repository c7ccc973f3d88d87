package http1

import (
	"bytes"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// headWindow returns the part of buf a head may occupy under maxBytes, and the offset of the start
// line after any empty lines that skipEmptyLines allows (RFC 9112 section 2.2: a server SHOULD
// ignore empty lines before the request-line). ok is false while only empty lines, or half of
// one, have arrived.
func headWindow(buf []byte, maxBytes int, skipEmptyLines bool) (window []byte, start int, ok bool) {
	window = buf
	if len(window) > maxBytes {
		window = window[:maxBytes]
	}
	if skipEmptyLines {
		for start+1 < len(window) && window[start] == '\r' && window[start+1] == '\n' {
			start += 2
		}
		if rest := window[start:]; len(rest) == 0 || (len(rest) == 1 && rest[0] == '\r') {
			return window, start, false
		}
	}
	return window, start, len(window) > start
}

// incompleteOrTooLarge turns running out of bytes into 431 once buf has reached maxBytes.
func incompleteOrTooLarge(err error, buf []byte, maxBytes int) error {
	if err == ErrIncomplete && len(buf) >= maxBytes {
		return perr(431, ReasonHeaderTooLarge, "message head too large")
	}
	return err
}

// scanVersion checks the HTTP-version and CRLF that end a request line at b[at:]. It returns
// ErrIncomplete, 400 bad_request_line, 505 for a well-formed version other than 1.0 and 1.1, or
// the version.
func scanVersion(b []byte, at int) (httpmsg.Proto, error) {
	if len(b) < at+10 {
		// A line break this early cannot follow a valid version.
		if bytes.IndexByte(b[at:], '\n') >= 0 {
			return 0, badRequestLine("malformed HTTP version")
		}
		return 0, ErrIncomplete
	}
	proto, ok := parseVersion(b[at:])
	switch {
	case !ok || b[at+8] != '\r' || b[at+9] != '\n':
		return 0, badRequestLine("malformed HTTP version")
	case proto == 0:
		return 0, perr(505, ReasonUnsupportedVersion, "unsupported HTTP version")
	}
	return proto, nil
}

// parseVersion parses "HTTP/1.0" or "HTTP/1.1" at the start of b. ok is false when b does not start
// with a well-formed HTTP-version; a well-formed but unsupported version returns ok true and proto 0.
func parseVersion(b []byte) (proto httpmsg.Proto, ok bool) {
	if len(b) < 8 || b[0] != 'H' || b[1] != 'T' || b[2] != 'T' || b[3] != 'P' || b[4] != '/' ||
		!isDigit(b[5]) || b[6] != '.' || !isDigit(b[7]) {
		return 0, false
	}
	if b[5] == '1' {
		switch b[7] {
		case '1':
			return httpmsg.HTTP11, true
		case '0':
			return httpmsg.HTTP10, true
		}
	}
	return 0, true
}

// clearTail zeroes fields of h beyond its length up to old, so a reused Header does not keep
// strings of an earlier, longer head alive.
func clearTail(h httpmsg.Header, old int) {
	if old > len(h) && old <= cap(h) {
		clear(h[len(h):old])
	}
}
