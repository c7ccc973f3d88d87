package cors

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
)

// origin is a parsed origin: scheme, host and port, normalised so that equal origins compare
// equal (lower-case scheme and host, no port when it is the scheme's default).
type origin struct {
	scheme, host, port string
}

// String serialises o as browsers send it in the Origin header.
func (o origin) String() string {
	if o.port == "" {
		return o.scheme + "://" + o.host
	}
	return o.scheme + "://" + o.host + ":" + o.port
}

// nullOrigin is the origin browsers send for opaque origins (sandboxed frames, files, some
// redirects). It matches only an allowOrigins entry that is exactly "null".
const nullOrigin = "null"

var (
	errNoScheme = errors.New(`want scheme "://" host, optionally ":" port`)
	errPath     = errors.New("an origin has no path, query or user information")
	errHost     = errors.New("bad host")
	errPort     = errors.New("bad port")
	errWildcard = errors.New(`want scheme "://*." domain, optionally ":" port`)
)

// parseOrigin parses s, an origin as sent in the Origin header: scheme "://" host [":" port].
func parseOrigin(s string) (origin, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return origin{}, errNoScheme
	}
	if strings.ContainsAny(rest, "/?#@") {
		return origin{}, errPath
	}
	o := origin{scheme: strings.ToLower(scheme)}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return origin{}, errHost
		}
		host, port = rest[:end+1], rest[end+1:]
		if port != "" && port[0] != ':' {
			return origin{}, errHost
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return origin{}, errHost
		}
		host = "[" + a.String() + "]"
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i:]
		}
		if !validHost(host) {
			return origin{}, errHost
		}
		host = strings.ToLower(host)
	}
	o.host = host
	if port != "" {
		digits := port[1:]
		if digits == "" || len(digits) > 5 || strings.TrimLeft(digits, "0123456789") != "" {
			return origin{}, errPort
		}
		n, _ := strconv.Atoi(digits)
		if n > 65535 {
			return origin{}, errPort
		}
		if !(o.scheme == "http" && n == 80) && !(o.scheme == "https" && n == 443) {
			o.port = strconv.Itoa(n)
		}
	}
	return o, nil
}

// validScheme reports whether s is a URI scheme: a letter, then letters, digits, '+', '-', '.'.
func validScheme(s string) bool {
	if s == "" || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validHost reports whether s is a registered name (DNS-like: letters, digits, '-', '_', '.'),
// or an IPv4 address, which is written the same way.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// wildcard is an allowOrigins entry "scheme://*.domain[:port]": any origin with that scheme and
// port whose host is one or more labels followed by "." and domain.
type wildcard struct {
	scheme, domain, port string
}

// parseWildcard parses an entry of the form scheme "://*." domain [":" port].
func parseWildcard(s string) (wildcard, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !strings.HasPrefix(rest, "*.") {
		return wildcard{}, errWildcard
	}
	o, err := parseOrigin(scheme + "://" + rest[2:])
	if err != nil {
		return wildcard{}, err
	}
	if strings.HasPrefix(o.host, "[") || strings.HasPrefix(o.host, ".") {
		return wildcard{}, errHost
	}
	return wildcard{scheme: o.scheme, domain: o.host, port: o.port}, nil
}

// match reports whether o is covered by w: same scheme and port, and a host that ends in
// "." + domain after at least one non-empty label.
func (w wildcard) match(o origin) bool {
	if o.scheme != w.scheme || o.port != w.port || len(o.host) <= len(w.domain)+1 {
		return false
	}
	cut := len(o.host) - len(w.domain) - 1
	if o.host[cut] != '.' || o.host[cut+1:] != w.domain {
		return false
	}
	labels := o.host[:cut]
	return labels[0] != '.' && labels[len(labels)-1] != '.' && !strings.Contains(labels, "..")
}
