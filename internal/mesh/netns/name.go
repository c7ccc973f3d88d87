package netns

import (
	"crypto/rand"
	"encoding/hex"
)

// RandomName returns prefix followed by 8 random hex digits, for namespace and interface names
// that must not clash with those of parallel runs. Keep prefix within 7 bytes for interface names.
func RandomName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux.
	return prefix + hex.EncodeToString(b[:])
}
