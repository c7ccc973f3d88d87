// Package jwtauth verifies JWT bearer tokens (JWS compact serialization) for the gateway.
//
// A Verifier accepts a token only when all of the following hold:
//
//   - it is at most Options.MaxTokenBytes long and is a compact JWS of exactly three
//     base64url segments (the JSON serialization, JWE and nested tokens are refused);
//   - its "alg" header is in the configured allowlist ("none" can never be configured);
//   - it names no "crit" extension and no "b64" parameter;
//   - it is signed by a key loaded from Options.KeyFiles or fetched from Options.JWKSURL,
//     and that key's type (and curve, and "alg" when the key has one) fits the token's
//     algorithm. A token with a "kid" is checked against the keys carrying that kid or,
//     when none does, against the keys without a kid; a token without a "kid" against
//     every key (at most 16 are tried). The "jku", "x5u", "jwk" and "x5c" headers are
//     never read: keys come only from the configuration;
//   - its claims pass validation: "exp" (required unless Options.AllowMissingExp),
//     "nbf" and "iat" against the clock with Options.Leeway, "iss" when Options.Issuer
//     is set, and "aud" when Options.Audiences is set.
//
// The "typ" header is not checked. Key set fetching: see Options.RefreshInterval,
// Options.MinRefetchInterval and Options.MaxKeyAge.
//
// Every refusal wraps exactly one of the Err* sentinels of this package, so callers can
// use errors.Is or ReasonCode. Error texts never contain the token or any part of it.
package jwtauth
