package control

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every control plane, proxy
// agent, gRPC client and backend a test starts must be stopped by the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
