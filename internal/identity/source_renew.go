package identity

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/meshgate/meshgate/internal/wait"
)

// Renewal retry bounds.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// renewLoop renews the certificate at half-life (or at once when kicked) until ctx ends.
func (s *Source) renewLoop(ctx context.Context) {
	for {
		t := time.NewTimer(s.untilRenewal())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kick:
			t.Stop()
		}
		for backoff := minBackoff; ; backoff = min(2*backoff, maxBackoff) {
			err := s.renew(ctx, true)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("identity: renewal failed; retrying", "error", err, "retry_in", backoff, "expires", s.Expiry())
			if !wait.Sleep(ctx, backoff) {
				return
			}
		}
	}
}

// untilRenewal is the time left until half the certificate's lifetime (counted from when it
// was obtained) has passed, with ±10% jitter.
func (s *Source) untilRenewal() time.Duration {
	s.mu.RLock()
	leaf, obtained := s.svid.Certificates[0], s.obtained
	s.mu.RUnlock()
	half := leaf.NotAfter.Sub(obtained) / 2
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(half))
	return max(obtained.Add(half+jitter).Sub(s.opts.Now()), 0)
}

// RenewNow asks for a new certificate at once (the current one was revoked).
func (s *Source) RenewNow() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// NotBefore is when the current certificate's validity starts; zero before the first one.
func (s *Source) NotBefore() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.svid == nil || len(s.svid.Certificates) == 0 {
		return time.Time{}
	}
	return s.svid.Certificates[0].NotBefore
}
