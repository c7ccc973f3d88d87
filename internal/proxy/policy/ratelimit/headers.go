package ratelimit

import (
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Response fields a limiter sets.
const (
	headerRetryAfter = "Retry-After"
	headerPolicy     = "RateLimit-Policy"
	headerState      = "RateLimit"
)

// policyField returns the RateLimit-Policy value of r: `"default";q=<burst>;w=<seconds a drained
// bucket takes to fill up, rounded up, at least 1>`.
func policyField(r *rule) string {
	w := ceilSeconds(time.Duration(r.limit))
	return `"default";q=` + strconv.FormatInt(r.burst, 10) + ";w=" + strconv.FormatInt(w, 10)
}

// stateField returns the RateLimit value of v: `"default";r=<tokens left>;t=<seconds until the
// bucket is full, rounded up>`.
func stateField(v verdict) string {
	b := make([]byte, 0, 32)
	b = append(b, `"default";r=`...)
	b = strconv.AppendInt(b, v.remaining, 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, ceilSeconds(v.reset), 10)
	return string(b)
}

// retryAfter returns the Retry-After value of a refused request: the seconds until the next
// request of its key will be admitted, rounded up, at least 1.
func retryAfter(v verdict) string {
	return strconv.FormatInt(max(ceilSeconds(v.wait), 1), 10)
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// rejectFields returns the extra fields of a 429 answer.
func rejectFields(policy string, v verdict) []httpmsg.Field {
	return []httpmsg.Field{
		{Name: "Cache-Control", Value: "no-store"},
		{Name: headerRetryAfter, Value: retryAfter(v)},
		{Name: headerPolicy, Value: policy},
		{Name: headerState, Value: stateField(v)},
	}
}
