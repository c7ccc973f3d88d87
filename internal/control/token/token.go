// Package token issues and checks join tokens: the secret a proxy presents the first time it asks
// the control plane for a workload certificate. A token grants identities (namespaces and
// services, with "*" for any) until it expires. Only a SHA-256 digest of each token's secret is
// stored; the secret is shown once, when the token is created.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/store"
)

// Errors of token checks.
var (
	// ErrInvalid: the token is malformed, unknown or its secret does not match.
	ErrInvalid = errors.New("token: invalid join token")
	// ErrExpired: the token was valid but has expired.
	ErrExpired = errors.New("token: join token expired")
	// ErrNotGranted: the token does not grant the identity asked for.
	ErrNotGranted = errors.New("token: identity not granted by the join token")
)

// prefix starts every token, so a leaked one is recognisable (and scannable) as meshgate's.
const prefix = "mgjt_"

// keyPrefix is where token records live in the store.
const keyPrefix = "tokens/"

// Grant is what a token allows: identities in Namespace (or any, "*") for Service (or any, "*").
type Grant struct {
	// Namespace is the namespace granted, or "*" for every namespace.
	Namespace string `json:"namespace"`
	// Service is the service (service account) granted, or "*" for every service.
	Service string `json:"service"`
}

// Allows reports whether the grant covers the identity of service in namespace.
func (g Grant) Allows(namespace, service string) bool {
	return (g.Namespace == "*" || g.Namespace == namespace) && (g.Service == "*" || g.Service == service)
}

// String returns "namespace/service".
func (g Grant) String() string { return g.Namespace + "/" + g.Service }

// Record is a stored token: its id, grant and lifetime, and the digest of its secret.
type Record struct {
	// ID names the token; it is the public part of the token string.
	ID string `json:"id"`
	// Grant is what the token allows.
	Grant Grant `json:"grant"`
	// Created and Expires bound the token's life; a zero Expires never expires.
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	// Description says what the token is for.
	Description string `json:"description,omitempty"`
	// Digest is the hex SHA-256 of the secret.
	Digest string `json:"digest"`
}

// Tokens creates and checks join tokens kept in a store.
type Tokens struct {
	// Store keeps the records.
	Store store.Store
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (t *Tokens) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Create makes a token granting g for ttl (0: no expiry), stores its record and returns the token
// string, which is not kept anywhere and cannot be shown again.
func (t *Tokens) Create(ctx context.Context, g Grant, ttl time.Duration, description string) (string, Record, error) {
	if err := checkGrant(g); err != nil {
		return "", Record{}, err
	}
	if ttl < 0 {
		return "", Record{}, fmt.Errorf("token: ttl %s must not be negative", ttl)
	}
	id := make([]byte, 6)
	secret := make([]byte, 24)
	_, _ = rand.Read(id)
	_, _ = rand.Read(secret)
	r := Record{ID: hex.EncodeToString(id), Grant: g, Created: t.now().UTC(), Description: description}
	if ttl > 0 {
		r.Expires = r.Created.Add(ttl)
	}
	sec := base64.RawURLEncoding.EncodeToString(secret)
	r.Digest = digest(sec)
	b, err := json.Marshal(r)
	if err != nil {
		return "", Record{}, fmt.Errorf("token: %w", err)
	}
	if err := t.Store.PutKey(ctx, keyPrefix+r.ID, b, true); err != nil {
		return "", Record{}, fmt.Errorf("token: store: %w", err)
	}
	return prefix + r.ID + "." + sec, r, nil
}

// Check returns the record of a valid, unexpired token. The secret is compared in constant time.
func (t *Tokens) Check(ctx context.Context, tok string) (Record, error) {
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok {
		return Record{}, ErrInvalid
	}
	id, sec, ok := strings.Cut(rest, ".")
	if !ok || len(id) != 12 || !isHex(id) || sec == "" {
		return Record{}, ErrInvalid
	}
	b, err := t.Store.GetKey(ctx, keyPrefix+id)
	if errors.Is(err, store.ErrNotFound) {
		return Record{}, ErrInvalid
	}
	if err != nil {
		return Record{}, fmt.Errorf("token: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("token: stored record %s: %w", id, err)
	}
	if subtle.ConstantTimeCompare([]byte(digest(sec)), []byte(r.Digest)) != 1 {
		return Record{}, ErrInvalid
	}
	if !r.Expires.IsZero() && !t.now().Before(r.Expires) {
		return r, fmt.Errorf("%w at %s", ErrExpired, r.Expires.Format(time.RFC3339))
	}
	return r, nil
}

// Authorize checks that tok is valid and grants the identity of service in namespace.
func (t *Tokens) Authorize(ctx context.Context, tok, namespace, service string) (Record, error) {
	r, err := t.Check(ctx, tok)
	if err != nil {
		return r, err
	}
	if !r.Grant.Allows(namespace, service) {
		return r, fmt.Errorf("%w: token %s grants %s, not %s/%s", ErrNotGranted, r.ID, r.Grant, namespace, service)
	}
	return r, nil
}

func checkGrant(g Grant) error {
	if g.Namespace != "*" && !config.IsMeshName(g.Namespace) {
		return fmt.Errorf("token: namespace %q is not a valid namespace or \"*\"", g.Namespace)
	}
	if g.Service != "*" && !config.IsMeshName(g.Service) {
		return fmt.Errorf("token: service %q is not a valid service name or \"*\"", g.Service)
	}
	return nil
}

func digest(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
