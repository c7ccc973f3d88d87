package http1

import "encoding/binary"

// Character classes, as [256]bool tables indexed by byte.
var (
	// tokenChar: tchar (RFC 9110 section 5.6.2).
	tokenChar = makeTable(func(c byte) bool {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			return true
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			return true
		}
		return false
	})
	// valueChar: field-vchar, SP and HTAB (field values, reason phrases, chunk extensions).
	valueChar = makeTable(func(c byte) bool { return c == '\t' || c == ' ' || (c > ' ' && c != 0x7f) })
	// targetChar: bytes allowed in a request-target: visible ASCII and obs-text, no SP or CTL.
	// Raw non-ASCII bytes are tolerated as most servers do; they cannot change framing.
	targetChar = makeTable(func(c byte) bool { return c > ' ' && c != 0x7f })
	// regNameChar: unreserved, sub-delims and "%" (reg-name and IPv4 in a Host).
	regNameChar = makeTable(func(c byte) bool {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			return true
		}
		switch c {
		case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '%':
			return true
		}
		return false
	})
)

func makeTable(f func(byte) bool) (t [256]bool) {
	for i := range t {
		t[i] = f(byte(i))
	}
	return t
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// ctlBits returns a word whose high bit is set in every byte of w below 0x20 or equal to 0x7f
// (DEL). Bytes of 0x80 and above are not flagged, and a clean word gives 0. A flagged word may
// also flag innocent bytes (borrows and carries cross byte boundaries), so callers re-check it a
// byte at a time; a control byte is never missed.
func ctlBits(w uint64) uint64 {
	return ((w - lsb*0x20) | (w + lsb)) &^ w & msb
}

// ctlOrSPBits is ctlBits that also flags SP (0x20).
func ctlOrSPBits(w uint64) uint64 {
	return ((w - lsb*0x21) | (w + lsb)) &^ w & msb
}

// scanValue returns the index of the first byte at or after i that is not a valueChar, or len(b).
// It checks sixteen bytes at a time and falls back to the table only for words holding a control
// byte (HTAB included, which is rare in values).
func scanValue(b []byte, i int) int {
	for i+16 <= len(b) {
		if ctlBits(binary.LittleEndian.Uint64(b[i:]))|ctlBits(binary.LittleEndian.Uint64(b[i+8:])) != 0 {
			break
		}
		i += 16
	}
	for i+8 <= len(b) {
		if ctlBits(binary.LittleEndian.Uint64(b[i:])) != 0 {
			for end := i + 8; i < end; i++ {
				if !valueChar[b[i]] {
					return i
				}
			}
			continue
		}
		i += 8
	}
	for i < len(b) && valueChar[b[i]] {
		i++
	}
	return i
}

// scanTarget returns the index of the first byte at or after i that is not a targetChar.
func scanTarget(b []byte, i int) int {
	for i+8 <= len(b) && ctlOrSPBits(binary.LittleEndian.Uint64(b[i:])) == 0 {
		i += 8
	}
	for i < len(b) && targetChar[b[i]] {
		i++
	}
	return i
}

// scanToken returns the index of the first byte at or after i that is not a tokenChar.
func scanToken(b []byte, i int) int {
	for i < len(b) && tokenChar[b[i]] {
		i++
	}
	return i
}

// ValidFieldName reports whether name is a valid field name (a non-empty token). Filters that set
// fields from untrusted input should check with it; the serialisers do not validate.
func ValidFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !tokenChar[name[i]] {
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether value may be sent as a field value: HTAB, SP, visible ASCII and
// obs-text only, with no leading or trailing white space. It rejects CR, LF and NUL, which would
// otherwise let a value inject field lines.
func ValidFieldValue(value string) bool {
	if value == "" {
		return true
	}
	if isOWS(value[0]) || isOWS(value[len(value)-1]) {
		return false
	}
	for i := 0; i < len(value); i++ {
		if !valueChar[value[i]] {
			return false
		}
	}
	return true
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && isOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
