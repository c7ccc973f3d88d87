package config

import (
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2), the syntax of header
// names and methods.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// isMethod reports whether s is a method name as meshgate matches them: uppercase letters.
func isMethod(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// isHeaderValue reports whether s can be sent as a header value: no CR, LF or NUL.
func isHeaderValue(s string) bool {
	return !strings.ContainsAny(s, "\r\n\x00")
}

// isHostname reports whether s is a DNS host name (letters, digits and hyphens in dot-separated
// labels of at most 63 bytes, 253 bytes in all) or an IPv4 address, in any case.
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// isHost reports whether s is a host name or an IP address.
func isHost(s string) bool {
	if isHostname(s) {
		return true
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// parsePort parses a decimal port number in min..65535.
func parsePort(s string, min int) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > 65535 || s[0] == '+' {
		return 0, false
	}
	return n, true
}

// checkHostPort checks that s is "host" or "host:port" with a valid host and a port in 1..65535.
func checkHostPort(s scope, hostport string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if !isHost(hostport) {
			s.errorf("%q is not a valid host or host:port", hostport)
		}
		return
	}
	checkHostAndPort(s, host, port)
}

// checkEndpointAddress checks that address is "host:port" with a valid host and a port in
// 1..65535.
func checkEndpointAddress(s scope, address string) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		s.errorf("%q is not a host:port address", address)
		return
	}
	checkHostAndPort(s, host, port)
}

// checkHostAndPort checks the parts of a host:port address.
func checkHostAndPort(s scope, host, port string) {
	if !isHost(host) {
		s.errorf("%q is not a valid host name or IP address", host)
	}
	if _, ok := parsePort(port, 1); !ok {
		s.errorf("port %q must be a number in 1..65535", port)
	}
}

// checkRegex checks that re compiles as an RE2 regular expression.
func checkRegex(s scope, re string) {
	if _, err := regexp.Compile(re); err != nil {
		s.errorf("invalid regex: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

// checkOneOf checks that value is one of allowed.
func checkOneOf(s scope, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	s.errorf("unknown value %q; expected %s", value, orList(allowed))
}

// orList formats values as `"a", "b" or "c"`.
func orList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// checkNotNegative checks that a count, size or duration is not negative.
func checkNotNegative[T ~int | ~int64](s scope, n T) {
	if n < 0 {
		s.errorf("must not be negative")
	}
}

// exactlyOne checks that exactly one of the named options is set; set[i] tells whether
// names[i] is.
func exactlyOne(s scope, names []string, set ...bool) {
	var found []string
	for i, ok := range set {
		if ok {
			found = append(found, names[i])
		}
	}
	want := strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
	switch len(found) {
	case 1:
	case 0:
		s.errorf("set exactly one of %s", want)
	default:
		s.errorf("set exactly one of %s, not %s", want, strings.Join(found, " and "))
	}
}
