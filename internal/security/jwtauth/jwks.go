package jwtauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// keySnapshot is one successfully fetched key set. Snapshots are immutable; a new
// pointer is stored on every successful fetch.
type keySnapshot struct {
	keys      []*verificationKey
	fetchedAt time.Time
}

// fresh reports whether the snapshot may still be used at now.
func (s *keySnapshot) fresh(now time.Time, maxAge time.Duration) bool {
	return s != nil && now.Sub(s.fetchedAt) <= maxAge
}

// Backoff between failed key set fetches of the background loop.
const (
	defaultRetryMin = time.Second
	defaultRetryMax = time.Minute
)

// fetchJWKS performs one key set request and parses the response. It never changes
// the Verifier's state.
func (v *Verifier) fetchJWKS(ctx context.Context) ([]*verificationKey, error) {
	ctx, cancel := context.WithTimeout(ctx, v.s.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.s.JWKSURL, nil)
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("request failed: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
		return nil, fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.s.MaxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > v.s.MaxJWKSBytes {
		return nil, fmt.Errorf("response larger than %d bytes", v.s.MaxJWKSBytes)
	}
	// One key the library cannot parse (a new key type, a too-small RSA key) must not
	// take the whole set down, so such entries are dropped; what remains is filtered
	// by newVerificationKey.
	set, err := jwk.Parse(body, jwk.WithIgnoreParseError(true))
	if err != nil {
		return nil, errors.New("response is not a JWK set")
	}
	var keys []*verificationKey
	skipped := 0
	for i := range set.Len() {
		k, _ := set.Key(i)
		vk, err := newVerificationKey(k, v.s.algs, true)
		if err != nil {
			skipped++
			kid, _ := k.KeyID()
			v.log.Debug("jwtauth: skipping key from key set", "kid", kid, "reason", err.Error())
			continue
		}
		keys = append(keys, vk)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no usable key in key set (%d skipped)", skipped)
	}
	return keys, nil
}

// refreshLocked fetches the key set and, on success, installs it. v.fetchMu must be held.
func (v *Verifier) refreshLocked(ctx context.Context, why string) error {
	keys, err := v.fetchJWKS(ctx)
	if err != nil {
		if ctx.Err() == nil {
			v.fetchFailing = true
			v.log.Warn("jwtauth: key set fetch failed; keeping previous keys",
				"url", v.logURL, "trigger", why, "error", err.Error())
		}
		return err
	}
	v.remote.Store(&keySnapshot{keys: keys, fetchedAt: v.s.Now()})
	level := slog.LevelDebug
	if v.fetchFailing {
		level = slog.LevelInfo // say so when fetching works again
		v.fetchFailing = false
	}
	v.log.Log(ctx, level, "jwtauth: key set fetched", "url", v.logURL, "trigger", why, "keys", len(keys))
	return nil
}

// refresh serialises with other fetches and refreshes the key set.
func (v *Verifier) refresh(ctx context.Context, why string) error {
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	return v.refreshLocked(ctx, why)
}

// refetchForUnknownKID is called when a token names a kid no current key carries. It
// fetches the key set at most once per MinRefetchInterval; callers that arrive while a
// fetch is running wait for it. It reports whether the key set changed, i.e. whether a
// new lookup is worthwhile.
func (v *Verifier) refetchForUnknownKID() bool {
	before := v.remote.Load()
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if v.remote.Load() != before {
		return true // another caller (or the refresh loop) fetched while we waited
	}
	now := v.s.Now()
	if !v.lastOnDemand.IsZero() && now.Sub(v.lastOnDemand) < v.s.MinRefetchInterval {
		return false
	}
	v.lastOnDemand = now
	return v.refreshLocked(v.baseCtx, "unknown kid") == nil
}

// refreshLoop refreshes the key set every RefreshInterval, and retries failed fetches
// with exponential backoff, until ctx is cancelled.
func (v *Verifier) refreshLoop(ctx context.Context, lastOK bool) {
	defer v.wg.Done()
	backoff := v.retryMin
	for {
		wait := v.s.RefreshInterval
		if !lastOK {
			wait = backoff
			backoff = min(backoff*2, v.retryMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		lastOK = v.refresh(ctx, "refresh") == nil
		if lastOK {
			backoff = v.retryMin
		}
	}
}
