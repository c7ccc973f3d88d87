package jwtauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefetchInterval = 10 * time.Second
	DefaultMaxKeyAge          = time.Hour
	DefaultFetchTimeout       = 5 * time.Second
	DefaultMaxJWKSBytes       = 1 << 20
	DefaultMaxTokenBytes      = 8192
)

// Options configure a Verifier. Zero values take the documented defaults.
type Options struct {
	// JWKSURL is an http or https URL serving a JSON Web Key Set. Optional when KeyFiles
	// is set. Symmetric ("oct") keys served there are ignored: a key set URL is public by
	// convention, so HMAC secrets are only taken from KeyFiles.
	JWKSURL string

	// KeyFiles are files read once by New. Each holds PEM blocks (public keys, private
	// keys whose public half is used, or certificates) or JSON (a single JWK or a JWK
	// set). HMAC secrets must be JWKs with "kty":"oct"; PEM bytes are never used as an
	// HMAC secret. Every file must contain at least one key usable with Algorithms.
	KeyFiles []string

	// Algorithms is the required allowlist of "alg" values, e.g. ["RS256","ES256"].
	// Supported: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384
	// ES512 EdDSA Ed25519. "none" is refused, and so is mixing HS* with asymmetric
	// algorithms (which would open the door to HS/RS key confusion).
	Algorithms []string

	// Issuer, when set, must equal the token's "iss".
	Issuer string

	// Audiences, when set, must share at least one value with the token's "aud".
	Audiences []string

	// Leeway is the clock skew tolerated for "exp", "nbf" and "iat". Must not be negative.
	Leeway time.Duration

	// AllowMissingExp accepts tokens without an "exp" claim. By default such tokens are
	// refused with ErrMissingClaim. An "exp" that is present is always checked.
	AllowMissingExp bool

	// RefreshInterval is how often the key set is fetched again. Default 5m. A token
	// whose "kid" is unknown also causes a fetch, at most once per MinRefetchInterval.
	RefreshInterval time.Duration

	// MinRefetchInterval is the least time between two fetches caused by unknown "kid"
	// values. Default 10s.
	MinRefetchInterval time.Duration

	// MaxKeyAge is how long the last successfully fetched key set stays usable while
	// fetches fail. After that every token that needs those keys is refused with
	// ErrKeysUnavailable. Default 1h; must be longer than RefreshInterval.
	MaxKeyAge time.Duration

	// FetchTimeout bounds one key set request. Default 5s.
	FetchTimeout time.Duration

	// MaxJWKSBytes is the largest key set response accepted. Default 1 MiB.
	MaxJWKSBytes int64

	// MaxTokenBytes is the longest token accepted; longer ones are refused with
	// ErrTooLarge before any parsing. Default 8192.
	MaxTokenBytes int

	// HTTPClient fetches the key set. Optional: by default a client with its own
	// connection pool is used and closed by Close.
	HTTPClient *http.Client

	// Logger receives key set fetch outcomes. Tokens and claims are never logged.
	// Default: discard.
	Logger *slog.Logger

	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// algFamily groups signature algorithms by the key type they need.
type algFamily int

const (
	familyHMAC algFamily = iota + 1
	familyRSA
	familyEC
	familyEdDSA
)

// supportedAlgorithms lists every algorithm that may appear in Options.Algorithms.
var supportedAlgorithms = map[string]algFamily{
	"HS256": familyHMAC, "HS384": familyHMAC, "HS512": familyHMAC,
	"RS256": familyRSA, "RS384": familyRSA, "RS512": familyRSA,
	"PS256": familyRSA, "PS384": familyRSA, "PS512": familyRSA,
	"ES256": familyEC, "ES384": familyEC, "ES512": familyEC,
	"EdDSA": familyEdDSA, "Ed25519": familyEdDSA,
}

// settings is Options after defaults and validation.
type settings struct {
	Options
	algs     map[string]jwa.SignatureAlgorithm
	hmacOnly bool
}

func normalize(o Options) (*settings, error) {
	s := &settings{Options: o, algs: map[string]jwa.SignatureAlgorithm{}}
	if len(o.Algorithms) == 0 {
		return nil, errors.New("jwtauth: Algorithms must list at least one algorithm")
	}
	var hmac, asym bool
	for _, name := range o.Algorithms {
		fam, ok := supportedAlgorithms[name]
		if !ok {
			if name == "none" || name == jwa.NoSignature().String() {
				return nil, errors.New(`jwtauth: algorithm "none" is never allowed`)
			}
			return nil, fmt.Errorf("jwtauth: unsupported algorithm %q", name)
		}
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok {
			return nil, fmt.Errorf("jwtauth: unsupported algorithm %q", name)
		}
		s.algs[name] = alg
		if fam == familyHMAC {
			hmac = true
		} else {
			asym = true
		}
	}
	if hmac && asym {
		return nil, errors.New("jwtauth: HS* algorithms cannot be combined with asymmetric algorithms")
	}
	s.hmacOnly = hmac

	if o.JWKSURL == "" && len(o.KeyFiles) == 0 {
		return nil, errors.New("jwtauth: JWKSURL or KeyFiles is required")
	}
	if o.JWKSURL != "" {
		u, err := url.Parse(o.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errors.New("jwtauth: JWKSURL must be an absolute http or https URL")
		}
		if s.hmacOnly {
			return nil, errors.New("jwtauth: JWKSURL cannot serve HMAC secrets; use KeyFiles for HS* algorithms")
		}
	}

	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"RefreshInterval", &s.RefreshInterval, DefaultRefreshInterval},
		{"MinRefetchInterval", &s.MinRefetchInterval, DefaultMinRefetchInterval},
		{"MaxKeyAge", &s.MaxKeyAge, DefaultMaxKeyAge},
		{"FetchTimeout", &s.FetchTimeout, DefaultFetchTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return nil, fmt.Errorf("jwtauth: %s must not be negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if s.Leeway < 0 {
		return nil, errors.New("jwtauth: Leeway must not be negative")
	}
	if s.MaxKeyAge <= s.RefreshInterval {
		return nil, errors.New("jwtauth: MaxKeyAge must be longer than RefreshInterval")
	}
	if s.MaxJWKSBytes < 0 || s.MaxTokenBytes < 0 {
		return nil, errors.New("jwtauth: MaxJWKSBytes and MaxTokenBytes must not be negative")
	}
	if s.MaxJWKSBytes == 0 {
		s.MaxJWKSBytes = DefaultMaxJWKSBytes
	}
	if s.MaxTokenBytes == 0 {
		s.MaxTokenBytes = DefaultMaxTokenBytes
	}
	for _, a := range s.Audiences {
		if a == "" {
			return nil, errors.New("jwtauth: Audiences must not contain an empty value")
		}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	// Copy the slices so later changes by the caller do not affect the Verifier.
	s.KeyFiles = append([]string(nil), o.KeyFiles...)
	s.Algorithms = append([]string(nil), o.Algorithms...)
	s.Audiences = append([]string(nil), o.Audiences...)
	return s, nil
}
