// Package testport hands tests loopback addresses to bind later, from freeport: never from the
// kernel's ephemeral range, where an outgoing connection of a parallel test could take the port
// before the test binds it.
package testport

import (
	"testing"

	"github.com/meshgate/meshgate/internal/freeport"
)

// Addr returns "127.0.0.1:PORT" with a port that is free now and that no other caller in this
// process got; it fails the test when there is none.
func Addr(t testing.TB) string {
	t.Helper()
	a, err := freeport.Loopback()
	if err != nil {
		t.Fatalf("testport: %v", err)
	}
	return a
}
