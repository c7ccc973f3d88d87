package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// Verifier verifies JWT bearer tokens. Create it with New, call Start when it uses a
// JWKS URL, and Close when done. Verify is safe for concurrent use.
type Verifier struct {
	s      *settings
	log    *slog.Logger
	static []*verificationKey // from KeyFiles, fixed after New

	remote atomic.Pointer[keySnapshot] // from JWKSURL, nil until the first success

	client       *http.Client
	ownClient    bool
	baseCtx      context.Context // cancelled by Close; used for fetches caused by Verify
	cancelBase   context.CancelFunc
	retryMin     time.Duration
	retryMax     time.Duration
	logURL       string     // JWKSURL without credentials, for logs
	fetchMu      sync.Mutex // serialises key set fetches
	lastOnDemand time.Time  // guarded by fetchMu
	fetchFailing bool       // guarded by fetchMu: the last fetch failed

	mu        sync.Mutex // guards the fields below
	started   bool
	closed    bool
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
}

// New validates opts and loads opts.KeyFiles. It does not contact the JWKS URL; Start
// does. A Verifier with only KeyFiles is ready to use at once.
func New(opts Options) (*Verifier, error) {
	return newVerifier(opts, os.ReadFile)
}

// newVerifier is New with the file reader passed in. The reader is used only here:
// a Verifier keeps no reference to it, so no token can cause a file to be read.
func newVerifier(opts Options, readFile func(string) ([]byte, error)) (*Verifier, error) {
	s, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	static, err := loadKeyFiles(s.KeyFiles, readFile, s.algs)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		s:        s,
		log:      s.Logger,
		static:   static,
		client:   s.HTTPClient,
		retryMin: defaultRetryMin,
		retryMax: min(defaultRetryMax, s.RefreshInterval),
	}
	if u, err := url.Parse(s.JWKSURL); err == nil {
		v.logURL = u.Redacted()
	}
	if v.client == nil {
		// An own transport, so that Close can release its connections.
		tr, ok := http.DefaultTransport.(*http.Transport)
		if ok {
			tr = tr.Clone()
		} else {
			tr = &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 90 * time.Second}
		}
		v.client = &http.Client{Transport: tr}
		v.ownClient = true
	}
	v.baseCtx, v.cancelBase = context.WithCancel(context.Background())
	return v, nil
}

// Start fetches the key set once and then keeps it fresh in a background goroutine
// until ctx is cancelled or Close is called. A failed first fetch is not fatal: it is
// logged and retried with backoff, and meanwhile tokens that need the key set are
// refused with ErrKeysUnavailable, so the gateway can start while the identity provider
// is briefly down. Start returns an error only when called twice or after Close. Without
// a JWKS URL it does nothing. The first fetch blocks for at most Options.FetchTimeout.
func (v *Verifier) Start(ctx context.Context) error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return errors.New("jwtauth: Start called after Close")
	}
	if v.started {
		v.mu.Unlock()
		return errors.New("jwtauth: Start called twice")
	}
	v.started = true
	if v.s.JWKSURL == "" {
		v.mu.Unlock()
		return nil
	}
	runCtx, cancel := context.WithCancel(ctx)
	v.cancelRun = cancel
	v.wg.Add(1)
	v.mu.Unlock()

	ok := v.refresh(runCtx, "start") == nil
	go v.refreshLoop(runCtx, ok)
	return nil
}

// Close stops the background refresh, waits for it to end and releases idle
// connections. Verify keeps working with the keys already loaded until they age out.
// Close may be called more than once.
func (v *Verifier) Close() {
	v.mu.Lock()
	v.closed = true
	if v.cancelRun != nil {
		v.cancelRun()
	}
	v.mu.Unlock()
	v.cancelBase()
	v.wg.Wait()
	if v.ownClient {
		v.client.CloseIdleConnections()
	}
}

// Verify checks token (without the "Bearer " prefix) and returns its claims. On failure
// the error wraps one of the Err* sentinels and never contains the token.
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > v.s.MaxTokenBytes {
		return nil, refuse(ErrTooLarge, "token exceeds the size limit")
	}
	if !isCompactJWS(token) {
		return nil, refuse(ErrMalformed, "not a compact JWS")
	}
	protected, _, _, err := jwsbb.SplitCompactString(token)
	if err != nil {
		return nil, refuse(ErrMalformed, "not a compact JWS")
	}
	// The algorithm is checked against the allowlist before anything else is parsed,
	// so "none", unknown and unlisted algorithms are told apart from garbage.
	algName, err := jwsbb.HeaderGetString(jwsbb.HeaderParseCompact(protected), jws.AlgorithmKey)
	if err != nil {
		if errors.Is(err, jwsbb.ErrHeaderNotFound()) {
			return nil, refuse(ErrAlgorithm, "header has no alg")
		}
		return nil, refuse(ErrMalformed, "header is not a JSON object with a string alg")
	}
	alg, ok := v.s.algs[algName]
	if !ok {
		return nil, refuse(ErrAlgorithm, "alg is not in the allowlist")
	}

	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, refuse(ErrMalformed, "cannot parse JWS")
	}
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if _, ok := hdr.Critical(); ok {
		return nil, refuse(ErrMalformed, "crit header is not supported")
	}
	if _, ok := hdr.B64(); ok {
		return nil, refuse(ErrMalformed, "b64 header is not supported")
	}
	if cty, ok := hdr.ContentType(); ok && strings.EqualFold(cty, "JWT") {
		return nil, refuse(ErrMalformed, "nested tokens are not supported")
	}
	kid, _ := hdr.KeyID()

	keys, err := v.candidates(kid, algName)
	if err != nil {
		return nil, err
	}
	payload, err := verifySignature(token, alg, keys)
	if err != nil {
		return nil, err
	}
	return v.validateClaims(payload)
}

// isCompactJWS reports whether s is three base64url segments separated by dots, the
// first one not empty. It keeps whitespace, padding and the JSON serialization away
// from the parser.
func isCompactJWS(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2 && s[0] != '.'
}

// candidates returns the keys a token with kid and alg may be verified with. An unknown
// kid causes a rate-limited key set fetch (key rotation at the identity provider).
func (v *Verifier) candidates(kid, alg string) ([]*verificationKey, error) {
	keys, remoteOK, err := v.lookup(kid, alg)
	if err == nil || !errors.Is(err, ErrUnknownKey) {
		return keys, err
	}
	if !remoteOK {
		return nil, refuse(ErrKeysUnavailable, "key set not fetched or too old")
	}
	if kid == "" || v.s.JWKSURL == "" || !v.refetchForUnknownKID() {
		return nil, err
	}
	keys, remoteOK, err = v.lookup(kid, alg)
	if err != nil && errors.Is(err, ErrUnknownKey) && !remoteOK {
		return nil, refuse(ErrKeysUnavailable, "key set not fetched or too old")
	}
	return keys, err
}

// lookup selects keys from the static keys and, while fresh, the fetched key set. It
// also reports whether the fetched key set (if one is configured) is usable.
func (v *Verifier) lookup(kid, alg string) ([]*verificationKey, bool, error) {
	pools := [][]*verificationKey{v.static}
	remoteOK := true
	if v.s.JWKSURL != "" {
		snap := v.remote.Load()
		remoteOK = snap.fresh(v.s.Now(), v.s.MaxKeyAge)
		if remoteOK {
			pools = append(pools, snap.keys)
		}
	}
	keys, err := selectKeys(pools, kid, alg)
	return keys, remoteOK, err
}

// verifySignature checks the signature with each candidate key, using the allowlisted
// algorithm and never the key type a header might suggest.
func verifySignature(token string, alg jwa.SignatureAlgorithm, keys []*verificationKey) ([]byte, error) {
	buf := []byte(token)
	for _, k := range keys {
		payload, err := jws.Verify(buf, jws.WithKey(alg, k.raw), jws.WithCompact(), jws.WithAlgorithmMatch(true))
		if err == nil {
			return payload, nil
		}
	}
	return nil, refuse(ErrSignature, "signature does not verify")
}

// validateClaims parses the verified payload and checks the registered claims.
func (v *Verifier) validateClaims(payload []byte) (Claims, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil || claims == nil || dec.More() {
		return nil, refuse(ErrMalformed, "payload is not a JSON object")
	}
	tok := jwt.New()
	if err := json.Unmarshal(payload, tok); err != nil {
		return nil, refuse(ErrMalformed, "registered claims have invalid types")
	}

	opts := []jwt.ValidateOption{
		jwt.WithClock(jwt.ClockFunc(v.s.Now)),
		jwt.WithAcceptableSkew(v.s.Leeway),
	}
	if !v.s.AllowMissingExp {
		opts = append(opts, jwt.WithRequiredClaim(jwt.ExpirationKey))
	}
	if v.s.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.s.Issuer))
	}
	if len(v.s.Audiences) > 0 {
		opts = append(opts, jwt.WithValidator(jwt.ValidatorFunc(v.checkAudience)))
	}
	if err := jwt.Validate(tok, opts...); err != nil {
		return nil, claimError(err)
	}
	return Claims(claims), nil
}

func (v *Verifier) checkAudience(_ context.Context, tok jwt.Token) error {
	aud, _ := tok.Audience()
	for _, a := range aud {
		if slices.Contains(v.s.Audiences, a) {
			return nil
		}
	}
	return refuse(ErrAudience, "aud names no accepted audience")
}

// claimError maps a jwt.Validate error to a sentinel, with a fixed text.
func claimError(err error) error {
	switch {
	case errors.Is(err, ErrAudience), errors.Is(err, jwt.InvalidAudienceError()):
		return refuse(ErrAudience, "aud names no accepted audience")
	case errors.Is(err, jwt.TokenExpiredError()):
		return refuse(ErrExpired, "exp is in the past")
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return refuse(ErrNotYetValid, "nbf is in the future")
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return refuse(ErrNotYetValid, "iat is in the future")
	case errors.Is(err, jwt.InvalidIssuerError()):
		return refuse(ErrIssuer, "iss is not the accepted issuer")
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return refuse(ErrMissingClaim, "exp is required")
	default:
		return refuse(ErrMalformed, "claims are invalid")
	}
}
