package engine

import (
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// maxRequestIDLen bounds a client-supplied X-Request-Id; a longer or odd one is replaced.
const maxRequestIDLen = 128

// prepare applies the listener's edge rules to a request before routing: hop-by-hop fields go, the
// client address is resolved through trusted proxies, the X-Forwarded-* fields are set, and the
// request gets its id.
func (lt *listenerTable) prepare(x *proxy.Exchange) {
	h := &x.Req.Header
	// Hop-by-hop fields, including those the client named in Connection, go first, so that
	// "Connection: X-Forwarded-For" cannot remove what meshgate adds below. "TE: trailers" stays
	// for gRPC.
	http1.StripHopByHop(h, true)
	// Framing is described by Req.ContentLength and Req.Chunked; each upstream transport writes
	// its own framing fields, so the client's must not travel on (a duplicate Content-Length is
	// ambiguous framing to a strict upstream).
	h.Del("Content-Length")
	// The edge answers "Expect: 100-continue" itself when it first reads the body; the upstream
	// receives the body without the handshake.
	if x.Req.Expect100 {
		h.Del("Expect")
	}
	// Headers meshgate derives from credentials (the consumer, JWT claims, authorization
	// answers) and those the listener declares internal are never the client's to send.
	for _, name := range lt.internal {
		h.Del(name)
	}

	peer := x.Peer.Addr().Unmap()
	x.ClientIP = peer
	peerText := x.PeerText
	if peerText == "" {
		peerText = peer.String()
	}
	if lt.isTrusted(peer) {
		xff := joinValues(*h, "X-Forwarded-For")
		x.ClientIP = lt.clientFromChain(xff, peer)
		if xff != "" {
			h.Set("X-Forwarded-For", xff+", "+peerText)
		} else {
			h.Set("X-Forwarded-For", peerText)
		}
		if !h.Has("X-Forwarded-Proto") {
			h.Set("X-Forwarded-Proto", x.Scheme)
		}
		if !h.Has("X-Forwarded-Host") {
			h.Set("X-Forwarded-Host", x.Req.Host)
		}
	} else {
		// An untrusted peer's claims about other hops are dropped, not extended.
		h.Del("Forwarded")
		h.Set("X-Forwarded-For", peerText)
		h.Set("X-Forwarded-Proto", x.Scheme)
		h.Set("X-Forwarded-Host", x.Req.Host)
	}

	if id, ok := h.Get("X-Request-Id"); ok && validRequestID(id) {
		x.ID = id
	} else {
		x.ID = newRequestID()
		h.Set("X-Request-Id", x.ID)
	}
}

func (lt *listenerTable) isTrusted(a netip.Addr) bool {
	for _, p := range lt.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientFromChain walks X-Forwarded-For from the right, skipping trusted proxies; the first
// untrusted address is the client. A malformed entry stops the walk: everything left of it is
// unverifiable, so the last trusted hop's view is used.
func (lt *listenerTable) clientFromChain(xff string, peer netip.Addr) netip.Addr {
	client := peer
	for xff != "" {
		var part string
		if i := strings.LastIndexByte(xff, ','); i >= 0 {
			part, xff = xff[i+1:], xff[:i]
		} else {
			part, xff = xff, ""
		}
		a, err := netip.ParseAddr(strings.TrimSpace(part))
		if err != nil {
			return client
		}
		client = a.Unmap()
		if !lt.isTrusted(client) {
			return client
		}
	}
	return client
}

func joinValues(h httpmsg.Header, name string) string {
	switch h.Count(name) {
	case 0:
		return ""
	case 1:
		return h.Value(name)
	}
	var b strings.Builder
	for _, f := range h {
		if httpmsg.EqualFold(f.Name, name) {
			if b.Len() > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Value)
		}
	}
	return b.String()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex. The runtime's per-thread generator is fast and good
// enough: ids must be unique, not secret.
func newRequestID() string {
	var raw [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		raw[i] = byte(a >> (8 * i))
		raw[8+i] = byte(b >> (8 * i))
	}
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
