// Package httpmsg holds the protocol-neutral HTTP message types that every part of the data plane
// shares: the HTTP/1 codec parses into them, the HTTP/2 adapter converts into them, and the router,
// filters and upstream transports read and write them.
package httpmsg

// Field is one header field. Name keeps the case it arrived with; comparisons ignore ASCII case.
type Field struct {
	// Name is the field name, for example "Content-Type".
	Name string
	// Value is the field value with surrounding optional white space removed.
	Value string
}

// Header is an ordered list of header fields. Order and repeated names are preserved, which keeps
// forwarding faithful and avoids the map allocations of net/http's Header.
type Header []Field

// Get returns the value of the first field named name (ASCII case-insensitive).
func (h Header) Get(name string) (string, bool) {
	for i := range h {
		if EqualFold(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// Value returns the value of the first field named name, or "" when there is none.
func (h Header) Value(name string) string {
	v, _ := h.Get(name)
	return v
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	_, ok := h.Get(name)
	return ok
}

// Count returns how many fields are named name.
func (h Header) Count(name string) int {
	n := 0
	for i := range h {
		if EqualFold(h[i].Name, name) {
			n++
		}
	}
	return n
}

// Add appends a field.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: name, Value: value})
}

// Set replaces every field named name with a single field holding value. The new field takes the
// position of the first one replaced, or is appended.
func (h *Header) Set(name, value string) {
	s := *h
	for i := range s {
		if EqualFold(s[i].Name, name) {
			s[i].Value = value
			rest := s[i+1:]
			w := i + 1
			for j := range rest {
				if !EqualFold(rest[j].Name, name) {
					s[w] = rest[j]
					w++
				}
			}
			clear(s[w:])
			*h = s[:w]
			return
		}
	}
	*h = append(s, Field{Name: name, Value: value})
}

// Del removes every field named name.
func (h *Header) Del(name string) {
	s := *h
	w := 0
	for i := range s {
		if !EqualFold(s[i].Name, name) {
			s[w] = s[i]
			w++
		}
	}
	clear(s[w:])
	*h = s[:w]
}

// Clone returns a copy that shares no backing array with h.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	return append(Header(make([]Field, 0, len(h))), h...)
}

// EqualFold reports whether a and b are equal under ASCII case folding. Header names are ASCII
// tokens, so this is all the folding HTTP needs, and it does not allocate.
func EqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// HasToken reports whether the comma-separated list value contains token (ASCII case-insensitive),
// as used for Connection, Upgrade and Transfer-Encoding.
func HasToken(value, token string) bool {
	for value != "" {
		var part string
		if i := indexByte(value, ','); i >= 0 {
			part, value = value[:i], value[i+1:]
		} else {
			part, value = value, ""
		}
		if EqualFold(trimOWS(part), token) {
			return true
		}
	}
	return false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
