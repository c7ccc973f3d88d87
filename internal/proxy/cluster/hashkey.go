package cluster

import (
	"net/netip"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster/xxhash"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// HashKey returns the consistent-hashing key of a request: the XXH64 hash of the named header's
// value (its first field), of the named cookie's value, or of the client IP address (4 bytes for
// IPv4, including IPv4-mapped IPv6; 16 bytes for IPv6). It returns false when on is nil or the
// request lacks the property; an empty header or cookie value counts as absent. The hash depends
// only on the value, so every gateway replica computes the same key. HashKey does not allocate.
func HashKey(on *config.HashOn, h httpmsg.Header, clientIP netip.Addr) (uint64, bool) {
	switch {
	case on == nil:
		return 0, false
	case on.Header != "":
		v, ok := h.Get(on.Header)
		if !ok || v == "" {
			return 0, false
		}
		return xxhash.Sum64String(v), true
	case on.Cookie != "":
		v, ok := cookieValue(h, on.Cookie)
		if !ok || v == "" {
			return 0, false
		}
		return xxhash.Sum64String(v), true
	case on.SourceIP:
		if !clientIP.IsValid() {
			return 0, false
		}
		ip := clientIP.Unmap()
		if ip.Is4() {
			b := ip.As4()
			return xxhash.Sum64(b[:]), true
		}
		b := ip.As16()
		return xxhash.Sum64(b[:]), true
	}
	return 0, false
}

// cookieValue returns the value of the first cookie called name in the request's Cookie fields
// (RFC 6265 section 5.4: "a=1; b=2", possibly split over several fields). Names are compared
// exactly; a value in double quotes is returned without them.
func cookieValue(h httpmsg.Header, name string) (string, bool) {
	for i := range h {
		if !httpmsg.EqualFold(h[i].Name, "Cookie") {
			continue
		}
		s := h[i].Value
		for s != "" {
			var pair string
			if j := indexByte(s, ';'); j >= 0 {
				pair, s = s[:j], s[j+1:]
			} else {
				pair, s = s, ""
			}
			pair = trimSpace(pair)
			j := indexByte(pair, '=')
			if j < 0 || trimSpace(pair[:j]) != name {
				continue
			}
			v := trimSpace(pair[j+1:])
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
