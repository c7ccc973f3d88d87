package httpmsg

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	future := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		desc     string
		value    string
		min, max time.Duration
	}{
		{"absent", "", 0, 0},
		{"seconds", "3", 3 * time.Second, 3 * time.Second},
		{"zero", "0", 0, 0},
		{"negative is malformed", "-1", 0, 0},
		{"garbage", "soon", 0, 0},
		{"http date", future, 85 * time.Second, 90 * time.Second},
		{"date in the past", "Mon, 02 Jan 2006 15:04:05 GMT", 0, 0},
	} {
		var h Header
		if tc.value != "" {
			h.Add("Retry-After", tc.value)
		}
		if got := RetryAfter(h); got < tc.min || got > tc.max {
			t.Errorf("%s: RetryAfter(%q) = %v, want between %v and %v", tc.desc, tc.value, got, tc.min, tc.max)
		}
	}
}
