package proxy

import (
	"testing"
	"time"
)

func TestMoveDeadline(t *testing.T) {
	now := time.Now()
	tests := []struct {
		desc     string
		cur, set time.Time
		want     bool
	}{
		{"none to none", time.Time{}, time.Time{}, false},
		{"none to some", time.Time{}, now.Add(time.Minute), true},
		{"some to none", now.Add(time.Minute), time.Time{}, true},
		{"the same", now.Add(time.Minute), now.Add(time.Minute), false},
		{"earlier always applies", now.Add(time.Minute), now.Add(time.Minute - time.Microsecond), true},
		{"later within the slack stays", now.Add(time.Minute), now.Add(time.Minute + 30*time.Millisecond), false},
		{"later beyond 50ms applies", now.Add(time.Minute), now.Add(time.Minute + 60*time.Millisecond), true},
		{"short timeouts get a slack of 1/64", now.Add(64 * time.Millisecond), now.Add(66 * time.Millisecond), true},
		{"unknown always applies", unknownDeadline, now.Add(time.Minute), true},
		{"unknown to none applies", unknownDeadline, time.Time{}, true},
	}
	for _, tt := range tests {
		cur := tt.cur
		if got := moveDeadline(&cur, tt.set); got != tt.want {
			t.Errorf("%s: moveDeadline = %v, want %v", tt.desc, got, tt.want)
		}
		if tt.want && !cur.Equal(tt.set) {
			t.Errorf("%s: recorded %v, want %v", tt.desc, cur, tt.set)
		}
	}
}
