package auth

import (
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/security/credential"
	"github.com/meshgate/meshgate/internal/security/jwtauth"
)

// JWT authenticates a bearer JSON Web Token. The verified claims go to the identity (for
// authorization rules) and, as configured, to upstream headers; the token itself is forwarded.
type JWT struct {
	name          string
	verifier      *jwtauth.Verifier
	consumerClaim string
	claimHeaders  map[string]string
	dir           *credential.Directory
}

var _ Authenticator = (*JWT)(nil)

// NewJWT returns the JWT authenticator name configured by c, verifying with v.
func NewJWT(name string, c *config.JWTAuth, v *jwtauth.Verifier, dir *credential.Directory) *JWT {
	return &JWT{name: name, verifier: v, consumerClaim: c.ConsumerClaim, claimHeaders: c.ClaimHeaders, dir: dir}
}

// Name implements Authenticator.
func (a *JWT) Name() string { return a.name }

// Challenge implements Authenticator.
func (a *JWT) Challenge() string { return `Bearer realm="meshgate"` }

// Authenticate implements Authenticator.
func (a *JWT) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	v, ok := authorization(x.Req.Header, "bearer")
	if !ok {
		return nil, false, nil
	}
	if x.Req.Header.Count("Authorization") > 1 {
		return nil, true, badCredential(a.name, "more than one Authorization header")
	}
	claims, err := a.verifier.Verify(strings.TrimLeft(v[len("bearer"):], " "))
	if err != nil {
		return nil, true, badCredential(a.name, jwtauth.ReasonCode(err))
	}
	id := &proxy.Identity{Authenticator: a.name, Claims: claims}
	if sub, ok := claims.String(a.consumerClaim); ok {
		if c, ok := a.dir.ByJWTSubject(sub); ok {
			id.Consumer, id.Groups, id.Plan = c.Name, c.Groups, c.Plan
		}
	}
	for claim, header := range a.claimHeaders {
		s, ok := claims.String(claim)
		if !ok {
			if list := claims.Strings(claim); list != nil {
				s, ok = strings.Join(list, ","), true
			}
		}
		// A claim value that could not be a header value (CR, LF, other controls) is not
		// copied: it would let a token's issuer inject header fields.
		if ok && safeHeaderValue(s) {
			x.Req.Header.Set(header, s)
		}
	}
	return id, true, nil
}

// safeHeaderValue reports whether s, taken from a token or an authorization answer, may be sent
// as a header value as it is: a valid field value (no CR, LF, NUL or other controls) of at most
// 8 KiB.
func safeHeaderValue(s string) bool {
	return len(s) <= 8<<10 && http1.ValidFieldValue(s)
}
