package testetcd

import (
	"testing"

	"go.uber.org/goleak"
)

func TestStartStopRestart(t *testing.T) {
	defer goleak.VerifyNone(t)
	s := Start(t)
	if !s.Healthy() {
		t.Fatal("not healthy after Start")
	}
	s.Stop()
	if s.Healthy() {
		t.Fatal("healthy after Stop")
	}
	s.Restart()
	if !s.Healthy() {
		t.Fatal("not healthy after Restart")
	}
	s.Kill()
	if s.Healthy() {
		t.Fatal("healthy after Kill")
	}
	s.Kill() // again: nothing
}
