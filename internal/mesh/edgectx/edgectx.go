// Package edgectx carries what the edge decided about a request (the consumer, its plan and
// the public route) to every hop inside the mesh, in one header signed with a key only meshgate
// proxies hold: a workload forwards it (as it forwards trace headers) but cannot forge or alter
// it. The gateway signs it; sidecars verify it and drop it when it does not verify.
package edgectx

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"
)

// Header is the request header that carries the signed edge context.
const Header = "X-Meshgate-Context"

// TTL is how long a signed context is accepted after the edge signed it.
const TTL = 5 * time.Minute

// maxHeader bounds the header a sidecar will look at.
const maxHeader = 2048

// Context is what the edge decided about a request.
type Context struct {
	// Consumer and Plan are who the edge authenticated the request as.
	Consumer string `json:"c,omitempty"`
	Plan     string `json:"p,omitempty"`
	// Route is the edge route that admitted it.
	Route string `json:"r,omitempty"`
	// RequestID is the request's id at the edge; a hop with another id treats the context as
	// copied from another request.
	RequestID string `json:"i,omitempty"`
	// Expires is when the context stops being accepted (Unix seconds).
	Expires int64 `json:"e"`
}

// Errors of Verify.
var (
	ErrNoKey     = errors.New("edgectx: no key yet")
	ErrMalformed = errors.New("edgectx: malformed")
	ErrSignature = errors.New("edgectx: bad signature")
	ErrExpired   = errors.New("edgectx: expired")
	ErrOtherID   = errors.New("edgectx: signed for another request")
)

// Key is the mesh's current context key; the zero value has none (nothing is signed, every
// header is dropped).
type Key struct {
	k atomic.Pointer[[]byte]
}

// Set installs the key (at least 32 bytes).
func (k *Key) Set(b []byte) {
	if len(b) < 32 {
		return
	}
	c := append([]byte(nil), b...)
	k.k.Store(&c)
}

// Has reports whether a key is installed.
func (k *Key) Has() bool { return k != nil && k.k.Load() != nil }

// Sign returns the header value for c, expiring TTL after now; "" without a key.
func (k *Key) Sign(c Context, now time.Time) string {
	key := k.k.Load()
	if key == nil {
		return ""
	}
	c.Expires = now.Add(TTL).Unix()
	payload, _ := json.Marshal(&c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return "v1." + p + "." + base64.RawURLEncoding.EncodeToString(mac(*key, p))
}

// Verify checks a header value and returns its context. requestID, when not empty, must be
// the id the context was signed for.
func (k *Key) Verify(v, requestID string, now time.Time) (Context, error) {
	key := k.k.Load()
	if key == nil {
		return Context{}, ErrNoKey
	}
	if len(v) > maxHeader || !strings.HasPrefix(v, "v1.") {
		return Context{}, ErrMalformed
	}
	p, sig, ok := strings.Cut(v[3:], ".")
	if !ok {
		return Context{}, ErrMalformed
	}
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Context{}, ErrMalformed
	}
	if !hmac.Equal(want, mac(*key, p)) {
		return Context{}, ErrSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Context{}, ErrMalformed
	}
	var c Context
	if json.Unmarshal(payload, &c) != nil {
		return Context{}, ErrMalformed
	}
	if now.Unix() > c.Expires {
		return Context{}, ErrExpired
	}
	if requestID != "" && c.RequestID != "" && c.RequestID != requestID {
		return Context{}, ErrOtherID
	}
	return c, nil
}

func mac(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("meshgate-edge-context-v1."))
	m.Write([]byte(payload))
	return m.Sum(nil)
}
