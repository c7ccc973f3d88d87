package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"net/netip"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// maxRedisKeyPart is the longest key text put into a Redis key as it is; a longer one (a long
// header value) is replaced by its SHA-256.
const maxRedisKeyPart = 200

// keyKind says what a limit counts separately.
type keyKind uint8

const (
	keyRoute    keyKind = iota // the route as a whole
	keyClientIP                // each client address
	keyHeader                  // each value of a request header
	keyConsumer                // each authenticated consumer ("" for anonymous requests)
)

// keySpec is what a limit counts separately, compiled from config.RateLimitKey.
type keySpec struct {
	kind   keyKind
	header string
}

// newKeySpec compiles k.
func newKeySpec(k config.RateLimitKey) keySpec {
	switch {
	case k.ClientIP:
		return keySpec{kind: keyClientIP}
	case k.Header != "":
		return keySpec{kind: keyHeader, header: k.Header}
	case k.Consumer:
		return keySpec{kind: keyConsumer}
	}
	return keySpec{kind: keyRoute}
}

// text returns the key of x as text, for Redis: "" for a route-wide limit, the client address,
// or the header value ("" when the request has none).
func (k keySpec) text(x *proxy.Exchange) string {
	switch k.kind {
	case keyClientIP:
		if !x.ClientIP.IsValid() {
			return ""
		}
		return x.ClientIP.String()
	case keyHeader:
		v, _ := x.Req.Header.Get(k.header)
		return v
	case keyConsumer:
		return consumerOf(x)
	}
	return ""
}

// consumerOf returns the name of x's consumer, or "" for an anonymous request.
func consumerOf(x *proxy.Exchange) string {
	if x.Identity == nil {
		return ""
	}
	return x.Identity.Consumer
}

// slots holds one slot per key of a keySpec: a single slot for a route-wide limit, else a
// bounded table.
type slots struct {
	spec keySpec
	one  slot
	ips  *table[netip.Addr]
	hdrs *table[string]
}

// newSlots returns the slots of spec, holding at most maxKeys keys.
func newSlots(spec keySpec, maxKeys int) *slots {
	s := &slots{spec: spec}
	seed := maphash.MakeSeed()
	switch spec.kind {
	case keyClientIP:
		s.ips = newTable(maxKeys,
			func(a netip.Addr) uint64 { return maphash.Comparable(seed, a) },
			func(a netip.Addr) netip.Addr { return a })
	case keyHeader, keyConsumer:
		s.hdrs = newTable(maxKeys,
			func(v string) uint64 { return maphash.String(seed, v) },
			strings.Clone) // header values alias the connection's read buffer
	}
	return s
}

// get returns the slot of x's key, adding it when new.
func (s *slots) get(x *proxy.Exchange) *slot {
	switch s.spec.kind {
	case keyClientIP:
		return s.ips.get(x.ClientIP)
	case keyHeader:
		v, _ := x.Req.Header.Get(s.spec.header)
		return s.hdrs.get(v)
	case keyConsumer:
		return s.hdrs.get(consumerOf(x))
	}
	return &s.one
}

// lookup returns the slot of x's key, or nil when there is none.
func (s *slots) lookup(x *proxy.Exchange) *slot {
	switch s.spec.kind {
	case keyClientIP:
		return s.ips.lookup(x.ClientIP)
	case keyHeader:
		v, _ := x.Req.Header.Get(s.spec.header)
		return s.hdrs.lookup(v)
	case keyConsumer:
		return s.hdrs.lookup(consumerOf(x))
	}
	return &s.one
}

// redisKeyPrefix returns the Redis key of route's route-wide limit, which is also the prefix of
// its keyed limits: "meshgate:rl:" and the route name with '%' and ':' percent-encoded, so that
// no two routes' keys can collide.
func redisKeyPrefix(route string) string {
	return "meshgate:rl:" + strings.NewReplacer("%", "%25", ":", "%3A").Replace(route)
}

// redisKey returns the Redis key of key under prefix. A key longer than maxRedisKeyPart, or one
// that looks like a digest itself, is replaced by "sha256:" and its hex SHA-256.
func redisKey(prefix string, spec keySpec, key string) string {
	if spec.kind == keyRoute {
		return prefix
	}
	if len(key) > maxRedisKeyPart || strings.HasPrefix(key, "sha256:") {
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	return prefix + ":" + key
}
