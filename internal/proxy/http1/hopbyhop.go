package http1

import (
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// IsHopByHop reports whether name (any case) is one of the fixed hop-by-hop fields: Connection,
// Keep-Alive, Proxy-Connection, Proxy-Authenticate, Proxy-Authorization, TE, Trailer,
// Transfer-Encoding and Upgrade.
func IsHopByHop(name string) bool {
	switch len(name) {
	case 2:
		return httpmsg.EqualFold(name, "te")
	case 7:
		return httpmsg.EqualFold(name, "trailer") || httpmsg.EqualFold(name, "upgrade")
	case 10:
		return httpmsg.EqualFold(name, "connection") || httpmsg.EqualFold(name, "keep-alive")
	case 16:
		return httpmsg.EqualFold(name, "proxy-connection")
	case 17:
		return httpmsg.EqualFold(name, "transfer-encoding")
	case 18:
		return httpmsg.EqualFold(name, "proxy-authenticate")
	case 19:
		return httpmsg.EqualFold(name, "proxy-authorization")
	}
	return false
}

// StripHopByHop removes, in place and without allocating in the common case, the fixed hop-by-hop
// fields (see IsHopByHop) and every field named by a Connection option, before a message is
// forwarded. With keepTE, the first TE field that lists "trailers" is kept as "TE: trailers", which
// gRPC needs end to end; other TE values are still removed.
//
// Call it on the received fields and add the proxy's own fields (X-Forwarded-For, Via, framing,
// Upgrade) afterwards, so that a client sending "Connection: X-Forwarded-For" cannot remove fields
// the proxy adds. Framing is carried by the parsed message (ContentLength, Chunked), not by the
// remaining fields: a Connection option may name Content-Length, and the caller writes the framing
// fields it forwards with.
func StripHopByHop(h *httpmsg.Header, keepTE bool) {
	s := *h
	var optBuf [4]string
	opts := optBuf[:0]
	for i := range s {
		if len(s[i].Name) == 10 && httpmsg.EqualFold(s[i].Name, "connection") {
			opts = append(opts, s[i].Value)
		}
	}
	w := 0
	keptTE := false
	for i := range s {
		f := s[i]
		if IsHopByHop(f.Name) {
			if keepTE && !keptTE && len(f.Name) == 2 && httpmsg.HasToken(f.Value, "trailers") {
				keptTE = true
				f.Value = "trailers"
				s[w] = f
				w++
			}
			continue
		}
		if len(opts) > 0 && namedByConnection(opts, f.Name) {
			continue
		}
		s[w] = f
		w++
	}
	clear(s[w:])
	*h = s[:w]
}

// namedByConnection reports whether name is one of the comma-separated options in values.
func namedByConnection(values []string, name string) bool {
	for _, v := range values {
		if httpmsg.HasToken(v, name) {
			return true
		}
	}
	return false
}
