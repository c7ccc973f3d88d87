// Package pathnorm normalises request paths before routing. The normalised path is both the path
// routes are matched against and the path sent upstream, so a route and the service behind it
// always agree on what was asked for.
//
// Normalize, in one left-to-right pass:
//
//   - requires an absolute path (a leading "/"); the asterisk-form "*" is the caller's business;
//   - rejects control characters, space, '#', '?' and a raw backslash, whether raw or (for
//     control characters, including NUL) percent-encoded;
//   - decodes percent-escapes of unreserved characters (ALPHA DIGIT "-" "." "_" "~"), so that
//     "%2e%2e" takes part in dot-segment resolution like "..";
//   - writes the hex digits of every other escape in upper case and never decodes "%25", so
//     nothing is ever decoded twice ("%252F" stays "%252F");
//   - rejects an encoded slash or backslash ("%2F", "%5C") unless Options.AllowEncodedSlash, in
//     which case they stay encoded;
//   - merges repeated slashes unless Options.KeepSlashes;
//   - resolves "." and ".." segments as RFC 3986 section 5.2.4 does; ".." at the root stays at
//     the root;
//   - rejects a dot segment followed by parameters (".;x", "..;", "%2e%2e;x"): servers that strip
//     ";" parameters from segments (servlet containers) resolve "/a/..;/admin" to "/admin" after
//     the gateway has matched it as a path under "/a/".
//
// Other bytes, including ";" and bytes above 0x7F, are data and pass through unchanged: "/admin;x"
// is not "/admin" here (authorization rules ignore such parameters; see package authz).
//
// An already normal path is returned as is, without allocating; any other path costs one
// allocation.
package pathnorm

import (
	"errors"
	"strings"
	"unsafe"
)

// Options tunes normalisation. The zero value is the secure default. It mirrors the listener's
// config.PathNormalization.
type Options struct {
	// KeepSlashes turns off merging of repeated slashes ("//a" stays "//a"). Default false: merge.
	KeepSlashes bool
	// AllowEncodedSlash accepts "%2F" and "%5C" (any hex case) and leaves them encoded. Default
	// false: they are rejected with ErrEncodedSlash.
	AllowEncodedSlash bool
}

// ErrBadPath is returned for a path that does not start with "/" or that contains a control
// character (raw or percent-encoded, NUL included), a space, '#' or '?'. Every error Normalize
// returns also matches ErrBadPath under errors.Is, so callers that need no detail can test for it
// alone.
var ErrBadPath = errors.New("pathnorm: bad path")

// ErrBadEscape is returned for a malformed percent-escape, such as "%zz" or a truncated "%4".
var ErrBadEscape error = &pathError{"pathnorm: malformed percent-escape"}

// ErrEncodedSlash is returned for "%2F" or "%5C" (any hex case) unless Options.AllowEncodedSlash
// is set.
var ErrEncodedSlash error = &pathError{"pathnorm: encoded slash or backslash"}

// ErrDotParams is returned for a segment that is "." or ".." followed by parameters (";" and
// anything after it), such as "..;" or ".;x", raw or with its dots percent-encoded.
var ErrDotParams error = &pathError{"pathnorm: dot segment with parameters"}

// ErrBackslash is returned for a raw backslash, which some servers treat as a path separator.
// It is rejected whatever the options.
var ErrBackslash error = &pathError{"pathnorm: backslash in path"}

// pathError is a specific normalisation error that is also an ErrBadPath.
type pathError struct{ msg string }

func (e *pathError) Error() string { return e.msg }

// Is makes every specific error match ErrBadPath.
func (e *pathError) Is(target error) bool { return target == ErrBadPath }

// Byte classes.
const (
	clsOK         uint8 = iota // passes through unchanged
	clsBad                     // control, space, '#', '?': ErrBadPath
	clsBackslash               // raw '\': ErrBackslash
	clsSlash                   // '/': segment separator
	clsPercent                 // '%': escape
	clsUnreserved              // unreserved: decode when escaped (only used on escaped values)
)

// rawClass classifies raw bytes.
var rawClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = clsBad
	}
	t[0x7f] = clsBad
	t[' '] = clsBad
	t['#'] = clsBad
	t['?'] = clsBad
	t['\\'] = clsBackslash
	t['/'] = clsSlash
	t['%'] = clsPercent
	return t
}()

// escClass classifies the value of a percent-escape.
var escClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = clsBad
	}
	t[0x7f] = clsBad
	for c := 'a'; c <= 'z'; c++ {
		t[c] = clsUnreserved
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = clsUnreserved
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = clsUnreserved
	}
	t['-'] = clsUnreserved
	t['.'] = clsUnreserved
	t['_'] = clsUnreserved
	t['~'] = clsUnreserved
	t['/'] = clsSlash
	t['\\'] = clsSlash
	return t
}()

// unhex returns the value of a hex digit and whether it is one.
func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const upperHex = "0123456789ABCDEF"

// Normalize returns the normal form of path, or an error matching ErrBadPath (and, where there is
// one, a more specific sentinel: ErrBadEscape, ErrEncodedSlash, ErrBackslash). See the package
// documentation for the rules. It does not allocate when path is already normal.
func Normalize(path string, opt Options) (string, error) {
	if isNormal(path, opt) {
		return path, nil
	}
	return normalize(path, opt)
}

// isNormal reports whether path is valid and already in normal form. Any doubt sends the path to
// the slow path, which decides.
func isNormal(p string, opt Options) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	seg := 1 // start of the current segment
	for i := 1; i < len(p); i++ {
		switch rawClass[p[i]] {
		case clsOK:
		case clsSlash:
			if !segmentOK(p[seg:i], opt, false) {
				return false
			}
			seg = i + 1
		case clsPercent:
			if i+2 >= len(p) {
				return false
			}
			h, l := p[i+1], p[i+2]
			if !isUpperHex(h) || !isUpperHex(l) {
				return false
			}
			hv, _ := unhex(h)
			lv, _ := unhex(l)
			switch escClass[hv<<4|lv] {
			case clsOK:
			case clsSlash:
				if !opt.AllowEncodedSlash {
					return false
				}
			default:
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return segmentOK(p[seg:], opt, true)
}

// segmentOK reports whether a raw segment may stand in a normal path.
func segmentOK(s string, opt Options, last bool) bool {
	switch len(s) {
	case 0:
		return last || opt.KeepSlashes
	case 1:
		return s[0] != '.'
	case 2:
		return s != ".." && s != ".;"
	}
	return !dotParams(s)
}

// dotParams reports whether the (decoded) segment s is "." or ".." followed by parameters.
func dotParams(s string) bool {
	return len(s) >= 2 && s[0] == '.' && (s[1] == ';' || len(s) >= 3 && s[1] == '.' && s[2] == ';')
}

func isUpperHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('A' <= c && c <= 'F')
}

// normalize is the slow path: it decodes each segment straight into the output and resolves dot
// segments as they complete. The output is never longer than the input, so one allocation
// suffices.
func normalize(p string, opt Options) (string, error) {
	if len(p) == 0 || p[0] != '/' {
		return "", ErrBadPath
	}
	buf := make([]byte, 0, len(p))
	i := 1
	for {
		start := len(buf) // where "/segment" starts in buf
		buf = append(buf, '/')
		for i < len(p) && p[i] != '/' {
			c := p[i]
			switch rawClass[c] {
			case clsOK:
				buf = append(buf, c)
				i++
				continue
			case clsBackslash:
				return "", ErrBackslash
			case clsPercent:
			default:
				return "", ErrBadPath
			}
			if i+2 >= len(p) {
				return "", ErrBadEscape
			}
			hv, ok1 := unhex(p[i+1])
			lv, ok2 := unhex(p[i+2])
			if !ok1 || !ok2 {
				return "", ErrBadEscape
			}
			v := hv<<4 | lv
			switch escClass[v] {
			case clsUnreserved:
				buf = append(buf, v)
			case clsBad:
				return "", ErrBadPath
			case clsSlash:
				if !opt.AllowEncodedSlash {
					return "", ErrEncodedSlash
				}
				buf = append(buf, '%', upperHex[hv], upperHex[lv])
			default:
				buf = append(buf, '%', upperHex[hv], upperHex[lv])
			}
			i += 3
		}
		last := i >= len(p)
		seg := buf[start+1:]
		if dotParams(unsafe.String(unsafe.SliceData(seg), len(seg))) {
			return "", ErrDotParams
		}
		switch {
		case len(seg) == 0:
			// An empty segment: a repeated slash, or the trailing slash when last.
			if !last && !opt.KeepSlashes {
				buf = buf[:start]
			}
		case len(seg) == 1 && seg[0] == '.':
			buf = buf[:start]
			if last {
				buf = append(buf, '/')
			}
		case len(seg) == 2 && seg[0] == '.' && seg[1] == '.':
			buf = buf[:start]
			// Remove the previous segment, if any; at the root ".." stays at the root.
			for j := len(buf) - 1; j >= 0; j-- {
				if buf[j] == '/' {
					buf = buf[:j]
					break
				}
			}
			if last {
				buf = append(buf, '/')
			}
		}
		if last {
			break
		}
		i++ // the '/' that ends this segment
	}
	if len(buf) == 0 {
		buf = append(buf, '/')
	}
	// buf is never written again, so the string may share its memory (as strings.Builder does).
	return unsafe.String(unsafe.SliceData(buf), len(buf)), nil
}

// WithoutParams returns path without segment parameters: in every segment, ';' and what follows
// it up to the next '/' are removed, as servers that strip matrix parameters do ("/a;x/b;y" is
// "/a/b"). A segment that held nothing but parameters is dropped with its '/', unless it is the
// last ("/;x/admin" is "/admin", "/a/;x" is "/a/"); what is left of nothing is "/". A path
// without ';' (or not starting with '/') is returned as it is, without allocating.
//
// Normalisation has already resolved dot segments and refused those with parameters ("..;"), so
// removing parameters never changes which segments a path has above another.
func WithoutParams(path string) string {
	if strings.IndexByte(path, ';') < 0 || path == "" || path[0] != '/' {
		return path
	}
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); {
		j := i + 1 // path[i] is the '/' that starts a segment
		for j < len(path) && path[j] != '/' {
			j++
		}
		name, _, params := strings.Cut(path[i+1:j], ";")
		if !params || name != "" || j == len(path) {
			b = append(b, '/')
			b = append(b, name...)
		}
		i = j
	}
	if len(b) == 0 {
		return "/"
	}
	return string(b)
}
