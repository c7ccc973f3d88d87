package jwtauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func jwksOptions(clock *fakeClock, url string) Options {
	opts := baseOptions(clock)
	opts.JWKSURL = url
	opts.RefreshInterval = time.Hour // the background loop never fires during a test
	opts.MaxKeyAge = 2 * time.Hour
	return opts
}

// TestRotationRefetchesOnUnknownKid: after the identity provider rotates its keys, a
// token with the new kid verifies at once (one extra fetch), without waiting for the
// refresh interval.
func TestRotationRefetchesOnUnknownKid(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "2026-01", key: rsaKey()})
	v := startedVerifier(t, jwksOptions(clock, srv.URL))
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("Start made %d requests, want 1", n)
	}
	mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "2026-01"}, goodClaims()))

	srv.setKeys(jwkSpec{kid: "2026-02", key: rsaKey2()}, jwkSpec{kid: "2026-02-ec", key: ecKey()})
	mustVerify(t, v, mint("RS256", rsaKey2(), map[string]any{"kid": "2026-02"}, goodClaims()))
	mustVerify(t, v, mint("ES256", ecKey(), map[string]any{"kid": "2026-02-ec"}, goodClaims()))
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2 (start + one refetch)", n)
	}
	// The retired key is gone, and asking for it again inside the window fetches nothing.
	wantRefused(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "2026-01"}, goodClaims()), ErrUnknownKey)
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("requests = %d, want 2", n)
	}
}

// TestUnknownKidFloodIsRateLimited: many concurrent tokens with unknown kids cause at
// most one fetch per MinRefetchInterval.
func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: ecKey()})
	v := startedVerifier(t, jwksOptions(clock, srv.URL))

	flood := func(round int) {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Go(func() {
				token := mint("ES256", attackerEC(), map[string]any{"kid": fmt.Sprintf("unknown-%d-%d", round, i)}, goodClaims())
				if _, err := v.Verify(token); !errors.Is(err, ErrUnknownKey) {
					errs <- fmt.Errorf("err = %v, want ErrUnknownKey", err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	flood(1)
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("after first flood: requests = %d, want 2 (start + one refetch)", n)
	}
	clock.Advance(DefaultMinRefetchInterval - time.Second)
	flood(2)
	if n := srv.requests.Load(); n != 2 {
		t.Fatalf("inside the window: requests = %d, want 2", n)
	}
	clock.Advance(time.Second)
	flood(3)
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("next window: requests = %d, want 3", n)
	}
	// Known keys keep working throughout.
	mustVerify(t, v, mint("ES256", ecKey(), map[string]any{"kid": "k1"}, goodClaims()))
}

// TestJWKSDownUsesCachedKeysUntilMaxKeyAge: while fetches fail, the last good key set
// is used until MaxKeyAge after its fetch; then every token needing it is refused with
// ErrKeysUnavailable, until a fetch succeeds again.
func TestJWKSDownUsesCachedKeysUntilMaxKeyAge(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: ecKey()})
	opts := jwksOptions(clock, srv.URL)
	opts.RefreshInterval = 5 * time.Minute
	opts.MaxKeyAge = time.Hour
	v := startedVerifier(t, opts)
	ctx := context.Background()

	srv.respond(http.StatusServiceUnavailable, []byte("down"))
	for range 11 { // what the refresh loop would do every 5 minutes
		clock.Advance(5 * time.Minute)
		if err := v.refresh(ctx, "test"); err == nil {
			t.Fatal("refresh succeeded against a failing server")
		}
	}
	clock.Advance(5 * time.Minute) // exactly MaxKeyAge since the last success
	token := func() string {
		return mint("ES256", ecKey(), map[string]any{"kid": "k1"}, with(goodClaims(), "exp", clock.Now().Unix()+60))
	}
	mustVerify(t, v, token())

	clock.Advance(time.Second)
	wantRefused(t, v, token(), ErrKeysUnavailable)
	wantRefused(t, v, mint("ES256", ecKey(), nil, with(goodClaims(), "exp", clock.Now().Unix()+60)), ErrKeysUnavailable)
	wantRefused(t, v, mint("ES256", ecKey(), map[string]any{"kid": "other"}, with(goodClaims(), "exp", clock.Now().Unix()+60)), ErrKeysUnavailable)

	srv.setKeys(jwkSpec{kid: "k1", key: ecKey()})
	if err := v.refresh(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, token())
}

// TestStaticKeysSurviveStaleJWKS: keys from files do not age; only tokens that need
// the fetched key set are refused once it is too old.
func TestStaticKeysSurviveStaleJWKS(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "remote", key: ecKey()})
	opts := jwksOptions(clock, srv.URL)
	opts.KeyFiles = []string{writeFile(t, "local.json", jwksJSON(jwkSpec{kid: "local", key: edKey()}))}
	v := startedVerifier(t, opts)
	srv.respond(http.StatusInternalServerError, nil)
	clock.Advance(opts.MaxKeyAge + time.Second)
	claims := with(goodClaims(), "exp", clock.Now().Unix()+60)
	mustVerify(t, v, mint("EdDSA", edKey(), map[string]any{"kid": "local"}, claims))
	wantRefused(t, v, mint("ES256", ecKey(), map[string]any{"kid": "remote"}, claims), ErrKeysUnavailable)
}

// TestJWKSBadResponsesKeepOldKeys: oversized, non-200, non-JSON or keyless responses
// never replace the current key set, whether the fetch is periodic or caused by an
// unknown kid.
func TestJWKSBadResponsesKeepOldKeys(t *testing.T) {
	const limit = 4096
	huge := jwksJSON(jwkSpec{kid: "k2", key: rsaKey2(), extra: map[string]any{"pad": strings.Repeat("x", limit)}})
	cases := []struct {
		name   string
		status int
		body   []byte
	}{
		{"too large", http.StatusOK, huge},
		// A valid set followed by white space: the part below the limit parses, so only
		// the size check refuses it.
		{"too large, valid prefix", http.StatusOK, append(jwksJSON(jwkSpec{kid: "k2", key: rsaKey2()}), strings.Repeat(" ", limit)...)},
		{"status 500", http.StatusInternalServerError, jwksJSON(jwkSpec{kid: "k2", key: rsaKey2()})},
		{"status 404", http.StatusNotFound, nil},
		{"status 204", http.StatusNoContent, nil},
		{"redirect without location", http.StatusFound, nil},
		{"invalid JSON", http.StatusOK, []byte(`{"keys":[{"kty":"RSA",`)},
		{"HTML", http.StatusOK, []byte("<html>login</html>")},
		{"empty key list", http.StatusOK, []byte(`{"keys":[]}`)},
		{"only unusable keys", http.StatusOK, jwksJSON(jwkSpec{kid: "k2", key: rsaKey2(), use: "enc"}, jwkSpec{kid: "k3", key: []byte(strings.Repeat("s", 64))})},
		{"empty body", http.StatusOK, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			srv := newJWKSServer(t, jwkSpec{kid: "k1", key: rsaKey()})
			opts := jwksOptions(clock, srv.URL)
			opts.MaxJWKSBytes = limit
			v := startedVerifier(t, opts)
			before := v.remote.Load()

			srv.respond(c.status, c.body)
			if err := v.refresh(context.Background(), "test"); err == nil {
				t.Fatal("refresh accepted a bad response")
			}
			// An unknown kid triggers a fetch, which fails the same way.
			wantRefused(t, v, mint("RS256", rsaKey2(), map[string]any{"kid": "k2"}, goodClaims()), ErrUnknownKey)
			if srv.requests.Load() != 3 {
				t.Fatalf("requests = %d, want 3", srv.requests.Load())
			}
			if v.remote.Load() != before {
				t.Fatal("key set replaced by a bad response")
			}
			mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "k1"}, goodClaims()))
		})
	}
	t.Run("limit is not hit by a normal set", func(t *testing.T) {
		srv := newJWKSServer(t, jwkSpec{kid: "k1", key: rsaKey()})
		opts := jwksOptions(newClock(), srv.URL)
		opts.MaxJWKSBytes = limit
		v := startedVerifier(t, opts)
		mustVerify(t, v, mint("RS256", rsaKey(), map[string]any{"kid": "k1"}, goodClaims()))
	})
}

// TestStartToleratesIdPDown: Start succeeds although the first fetch fails; tokens are
// refused with ErrKeysUnavailable until the background retry succeeds.
func TestStartToleratesIdPDown(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t)
	srv.respond(http.StatusBadGateway, nil)
	v := newVerifierT(t, jwksOptions(clock, srv.URL))
	v.retryMin, v.retryMax = time.Millisecond, 5*time.Millisecond
	if err := v.Start(context.Background()); err != nil {
		t.Fatalf("Start failed although the first fetch is allowed to fail: %v", err)
	}
	token := mint("ES256", ecKey(), map[string]any{"kid": "k1"}, goodClaims())
	wantRefused(t, v, token, ErrKeysUnavailable)

	srv.setKeys(jwkSpec{kid: "k1", key: ecKey()})
	deadline := time.Now().Add(5 * time.Second)
	for v.remote.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("background retry never fetched the key set")
		}
		time.Sleep(time.Millisecond)
	}
	mustVerify(t, v, token)
}

// TestFetchTimeout: a key set server that never answers does not block Start beyond
// FetchTimeout, and its request is abandoned.
func TestFetchTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	opts := jwksOptions(newClock(), srv.URL)
	opts.FetchTimeout = 20 * time.Millisecond
	v := startedVerifier(t, opts)
	wantRefused(t, v, mint("ES256", ecKey(), map[string]any{"kid": "k1"}, goodClaims()), ErrKeysUnavailable)
}

// TestLifecycle: Start is refused twice or after Close; a cancelled Start context and
// Close both stop the background goroutine (goleak checks that none is left).
func TestLifecycle(t *testing.T) {
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: ecKey()})
	ctx, cancel := context.WithCancel(context.Background())
	v := newVerifierT(t, jwksOptions(newClock(), srv.URL))
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err == nil {
		t.Fatal("second Start accepted")
	}
	cancel()
	v.Close()
	v.Close()
	// Keys already fetched keep working after Close.
	mustVerify(t, v, mint("ES256", ecKey(), map[string]any{"kid": "k1"}, goodClaims()))

	v2 := newVerifierT(t, jwksOptions(newClock(), srv.URL))
	v2.Close()
	if err := v2.Start(context.Background()); err == nil {
		t.Fatal("Start after Close accepted")
	}

	// Without a JWKS URL, Start has nothing to do.
	v3 := rsaFileVerifier(t, newClock())
	if err := v3.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentVerifyAndRefresh exercises Verify, refreshes and rotations together
// under the race detector.
func TestConcurrentVerifyAndRefresh(t *testing.T) {
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: ecKey()})
	v := startedVerifier(t, jwksOptions(clock, srv.URL))
	good := mint("ES256", ecKey(), map[string]any{"kid": "k1"}, goodClaims())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i == 0 && j%10 == 0 {
					_ = v.refresh(context.Background(), "test")
				}
				if _, err := v.Verify(good); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestLogsNeverContainTokens: fetch outcomes are logged (failures as warnings), but no
// token, kid from a token, or claim ever reaches the log.
func TestLogsNeverContainTokens(t *testing.T) {
	var buf syncBuffer
	clock := newClock()
	srv := newJWKSServer(t, jwkSpec{kid: "k1", key: ecKey()})
	opts := jwksOptions(clock, srv.URL)
	opts.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := startedVerifier(t, opts)

	tokens := []string{
		mint("ES256", ecKey(), map[string]any{"kid": "k1"}, with(goodClaims(), "sub", "secret-subject")),
		mint("ES256", attackerEC(), map[string]any{"kid": "hostile-kid-value"}, goodClaims()),
	}
	srv.respond(http.StatusInternalServerError, nil)
	clock.Advance(time.Minute)
	for _, tok := range tokens {
		_, _ = v.Verify(tok)
	}
	logs := buf.String()
	if !strings.Contains(logs, "key set fetch failed") {
		t.Fatalf("fetch failure not logged:\n%s", logs)
	}
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(logs, part) {
				t.Fatalf("log contains part of a token:\n%s", logs)
			}
		}
	}
	for _, s := range []string{"secret-subject", "hostile-kid-value"} {
		if strings.Contains(logs, s) {
			t.Fatalf("log contains %q:\n%s", s, logs)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
