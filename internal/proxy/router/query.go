package router

import (
	"net/url"
	"strings"
)

// queryValue returns the value of the first occurrence of the parameter name in the raw query.
// Pairs are separated by '&'; names and values are decoded as by url.QueryUnescape, and pairs
// that fail to decode are skipped. It allocates only when a name or value needs decoding.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var pair string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		if pair == "" {
			continue
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		k, ok := queryUnescape(k)
		if !ok || k != name {
			continue
		}
		if v, ok = queryUnescape(v); ok {
			return v, true
		}
	}
	return "", false
}

// queryUnescape decodes s as url.QueryUnescape does, without allocating when there is nothing to
// decode.
func queryUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	u, err := url.QueryUnescape(s)
	return u, err == nil
}
