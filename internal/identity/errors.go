package identity

import (
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Errors returned by the CA, for callers to map onto their own codes with errors.Is. Every
// error the package returns wraps at most one of them and carries the details in its message.
var (
	// ErrBadCSR means the certificate request cannot be signed as it is: it does not parse, its
	// signature does not verify, or its names are not exactly one workload SPIFFE ID.
	ErrBadCSR = errors.New("bad certificate request")
	// ErrTrustDomain means a SPIFFE ID (or a CA certificate) belongs to another trust domain.
	ErrTrustDomain = errors.New("wrong trust domain")
	// ErrBadIdentity means a SPIFFE ID is not a workload identity of the shape
	// spiffe://<trust domain>/ns/<namespace>/sa/<service>, or names an identity reserved for
	// the control plane.
	ErrBadIdentity = errors.New("not a workload identity")
	// ErrUnsupportedKey means a public key is not ECDSA P-256/P-384, Ed25519 or RSA of at least
	// 2048 bits.
	ErrUnsupportedKey = errors.New("unsupported key")
	// ErrNotAuthorized means the caller's authorize function refused the identity.
	ErrNotAuthorized = errors.New("not authorized")
	// ErrCAExpired means the signing certificate is not valid now.
	ErrCAExpired = errors.New("signing certificate expired")
	// ErrBadIntermediate means an operator-supplied intermediate CA cannot be used.
	ErrBadIntermediate = errors.New("unusable intermediate CA")
	// ErrBadState means stored CA state does not parse or is not consistent.
	ErrBadState = errors.New("bad CA state")
	// ErrRotation means a rotation cannot begin: one is in progress, or the CA's kind does not
	// allow it.
	ErrRotation = errors.New("rotation refused")
	// ErrOptions means CAOptions or SourceOptions are not valid.
	ErrOptions = errors.New("invalid options")
)

// authorizationError is the error of an authorize callback that refused an identity. It is
// ErrNotAuthorized for errors.Is, and unwraps to the callback's own error, so a caller can both
// classify it and find its own typed error in it.
type authorizationError struct {
	id  spiffeid.ID
	err error
}

func (e *authorizationError) Error() string {
	return fmt.Sprintf("identity: %s is not authorized: %v", e.id, e.err)
}

func (e *authorizationError) Unwrap() error { return e.err }

func (e *authorizationError) Is(target error) bool { return target == ErrNotAuthorized }
