package jwtauth

import "errors"

// Sentinel errors returned (wrapped) by Verify. Test with errors.Is.
var (
	// ErrMalformed: the token is not a well-formed compact JWS carrying a JSON object of
	// claims, or it uses a JOSE feature this package refuses (crit, b64, nested JWT).
	ErrMalformed = errors.New("jwtauth: malformed token")
	// ErrTooLarge: the token is longer than Options.MaxTokenBytes; it was not parsed.
	ErrTooLarge = errors.New("jwtauth: token too large")
	// ErrAlgorithm: the token's "alg" is missing, "none", not in the allowlist, or not
	// usable with the key its "kid" names.
	ErrAlgorithm = errors.New("jwtauth: algorithm not allowed")
	// ErrUnknownKey: no configured key matches the token's "kid" and algorithm.
	ErrUnknownKey = errors.New("jwtauth: unknown signing key")
	// ErrSignature: a matching key was found but the signature does not verify.
	ErrSignature = errors.New("jwtauth: invalid signature")
	// ErrExpired: "exp" is not after the current time (minus the leeway).
	ErrExpired = errors.New("jwtauth: token expired")
	// ErrNotYetValid: "nbf" or "iat" is after the current time (plus the leeway).
	ErrNotYetValid = errors.New("jwtauth: token not yet valid")
	// ErrIssuer: Options.Issuer is set and "iss" is missing or different.
	ErrIssuer = errors.New("jwtauth: issuer not accepted")
	// ErrAudience: Options.Audiences is set and "aud" is missing or names none of them.
	ErrAudience = errors.New("jwtauth: audience not accepted")
	// ErrMissingClaim: a required claim is absent ("exp" unless Options.AllowMissingExp).
	ErrMissingClaim = errors.New("jwtauth: required claim missing")
	// ErrKeysUnavailable: the token would need keys from the JWKS URL, but none have been
	// fetched yet, or the last successful fetch is older than Options.MaxKeyAge.
	ErrKeysUnavailable = errors.New("jwtauth: verification keys unavailable")
)

// reasons maps each sentinel to a short, stable code suitable for logs, metrics and
// an error response body.
var reasons = []struct {
	err  error
	code string
}{
	{ErrTooLarge, "token_too_large"},
	{ErrMalformed, "malformed_token"},
	{ErrAlgorithm, "algorithm_not_allowed"},
	{ErrUnknownKey, "unknown_key"},
	{ErrSignature, "invalid_signature"},
	{ErrExpired, "token_expired"},
	{ErrNotYetValid, "token_not_yet_valid"},
	{ErrIssuer, "invalid_issuer"},
	{ErrAudience, "invalid_audience"},
	{ErrMissingClaim, "missing_claim"},
	{ErrKeysUnavailable, "keys_unavailable"},
}

// ReasonCode returns a short, stable code for an error returned by Verify, such as
// "token_expired" or "invalid_signature". It returns "" for nil and "invalid_token" for
// any other error.
func ReasonCode(err error) string {
	if err == nil {
		return ""
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "invalid_token"
}

// verifyError is the concrete error Verify returns: one sentinel plus a fixed detail
// text. The detail is always a constant written in this package, never derived from the
// token, so the error can be logged or returned to a client.
type verifyError struct {
	kind   error
	detail string
}

func (e *verifyError) Error() string {
	if e.detail == "" {
		return e.kind.Error()
	}
	return e.kind.Error() + ": " + e.detail
}

func (e *verifyError) Unwrap() error { return e.kind }

// refuse builds a verifyError. detail must be a constant string.
func refuse(kind error, detail string) error {
	return &verifyError{kind: kind, detail: detail}
}
