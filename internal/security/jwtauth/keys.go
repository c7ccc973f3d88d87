package jwtauth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// maxKeyFileBytes bounds one key file.
const maxKeyFileBytes = 1 << 20

// maxCandidates bounds how many keys one token is checked against (tokens without
// "kid", or several keys sharing one "kid").
const maxCandidates = 16

// verificationKey is a public key (or HMAC secret) ready for jws.Verify, with the set of
// allowlisted algorithms it may verify. The set is decided once, from the key's type,
// curve, size and "alg"/"use"/"key_ops" members, never from a token.
type verificationKey struct {
	kid  string
	algs map[string]struct{}
	raw  any // *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey or []byte (HMAC)
}

func (k *verificationKey) allows(alg string) bool {
	_, ok := k.algs[alg]
	return ok
}

// algorithmsForKey returns the algorithms a raw public key or secret can verify,
// following RFC 7518: RSA keys serve RS*/PS*, each NIST curve exactly one ES*, Ed25519
// keys EdDSA, and HMAC secrets the HS* whose hash is not longer than the secret.
func algorithmsForKey(raw any) []string {
	switch k := raw.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < 2048 {
			return nil
		}
		return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return []string{"ES256"}
		case elliptic.P384():
			return []string{"ES384"}
		case elliptic.P521():
			return []string{"ES512"}
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return []string{"EdDSA", "Ed25519"}
		}
	case []byte:
		var algs []string
		if len(k) >= 32 {
			algs = append(algs, "HS256")
		}
		if len(k) >= 48 {
			algs = append(algs, "HS384")
		}
		if len(k) >= 64 {
			algs = append(algs, "HS512")
		}
		return algs
	}
	return nil
}

// newVerificationKey prepares a parsed JWK for verification. It returns an error that
// says why the key cannot be used (the caller logs or reports it). fromJWKS refuses
// symmetric keys.
func newVerificationKey(k jwk.Key, allow map[string]jwa.SignatureAlgorithm, fromJWKS bool) (*verificationKey, error) {
	if jwk.IsUnsupportedKey(k) {
		return nil, errors.New("unsupported key type")
	}
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return nil, errors.New(`key "use" is not "sig"`)
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, errors.New(`key "key_ops" does not include "verify"`)
	}

	var raw any
	if k.KeyType() == jwa.OctetSeq() {
		if fromJWKS {
			return nil, errors.New("symmetric keys are not accepted from a key set URL")
		}
		var secret []byte
		if err := jwk.Export(k, &secret); err != nil {
			return nil, errors.New("cannot read symmetric key")
		}
		raw = secret
	} else {
		pub, err := k.PublicKey()
		if err != nil {
			return nil, errors.New("cannot derive public key")
		}
		if err := jwk.Export(pub, &raw); err != nil {
			return nil, errors.New("cannot export public key")
		}
	}

	candidates := algorithmsForKey(raw)
	if a, ok := k.Algorithm(); ok {
		// A key that names its algorithm is usable with that algorithm only.
		name := a.String()
		if slices.Contains(candidates, name) {
			candidates = []string{name}
		} else {
			candidates = nil
		}
	}
	algs := map[string]struct{}{}
	for _, name := range candidates {
		if _, ok := allow[name]; ok {
			algs[name] = struct{}{}
		}
	}
	if len(algs) == 0 {
		return nil, errors.New("key fits none of the allowed algorithms")
	}
	kid, _ := k.KeyID()
	return &verificationKey{kid: kid, algs: algs, raw: raw}, nil
}

// loadKeyFiles reads and parses Options.KeyFiles. It is called only by New.
func loadKeyFiles(paths []string, readFile func(string) ([]byte, error), allow map[string]jwa.SignatureAlgorithm) ([]*verificationKey, error) {
	var keys []*verificationKey
	for _, path := range paths {
		data, err := readFile(path)
		if err != nil {
			return nil, fmt.Errorf("jwtauth: reading key file %q: %w", path, err)
		}
		if len(data) > maxKeyFileBytes {
			return nil, fmt.Errorf("jwtauth: key file %q is larger than %d bytes", path, maxKeyFileBytes)
		}
		var set jwk.Set
		if bytes.Contains(data, []byte("-----BEGIN ")) {
			set, err = jwk.Parse(data, jwk.WithPEM(true))
		} else {
			set, err = jwk.Parse(data)
		}
		if err != nil {
			return nil, fmt.Errorf("jwtauth: key file %q holds no valid PEM, JWK or JWK set: %w", path, err)
		}
		found := 0
		var reasons []error
		for i := range set.Len() {
			k, _ := set.Key(i)
			vk, err := newVerificationKey(k, allow, false)
			if err != nil {
				reasons = append(reasons, err)
				continue
			}
			keys = append(keys, vk)
			found++
		}
		if found == 0 {
			return nil, fmt.Errorf("jwtauth: key file %q has no key usable with the allowed algorithms: %w", path, errors.Join(reasons...))
		}
	}
	return keys, nil
}

// selectKeys picks the keys a token with the given kid and alg may be checked against.
// With a kid, keys carrying that kid are used; if none does, keys without a kid are
// used. Without a kid, every key is a candidate. It fails with ErrUnknownKey when no
// key fits, and with ErrAlgorithm when keys carry the kid but none fits the algorithm.
func selectKeys(pools [][]*verificationKey, kid, alg string) ([]*verificationKey, error) {
	var byKid, kidless, all []*verificationKey
	for _, pool := range pools {
		for _, k := range pool {
			all = append(all, k)
			switch {
			case k.kid == "":
				kidless = append(kidless, k)
			case kid != "" && k.kid == kid:
				byKid = append(byKid, k)
			}
		}
	}
	var pick []*verificationKey
	switch {
	case kid == "":
		pick = all
	case len(byKid) > 0:
		pick = byKid
	default:
		pick = kidless
	}
	var out []*verificationKey
	for _, k := range pick {
		if k.allows(alg) {
			out = append(out, k)
			if len(out) == maxCandidates {
				break
			}
		}
	}
	if len(out) == 0 {
		if kid != "" && len(byKid) > 0 {
			return nil, refuse(ErrAlgorithm, "the key named by kid does not support the token's algorithm")
		}
		return nil, refuse(ErrUnknownKey, "no key matches the token's kid and algorithm")
	}
	return out, nil
}
