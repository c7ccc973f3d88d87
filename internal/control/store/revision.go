package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// DefaultHistoryLimit is how many config revisions a store keeps when its options say 0.
const DefaultHistoryLimit = 100

// stamp fills the fields Apply sets: the version, the time and the digest of the YAML.
func stamp(rev Revision, version uint64, now time.Time) Revision {
	sum := sha256.Sum256(rev.YAML)
	rev.Version = version
	rev.Time = now.UTC()
	rev.Digest = hex.EncodeToString(sum[:])
	return rev
}

// historyLimit returns the configured limit or the default.
func historyLimit(n int) int {
	if n <= 0 {
		return DefaultHistoryLimit
	}
	return n
}

// oldestKept returns the lowest version kept when version is the newest and limit are kept.
func oldestKept(version uint64, limit int) uint64 {
	if version <= uint64(limit) {
		return 1
	}
	return version - uint64(limit) + 1
}

// checkTTL refuses a workload TTL that is not positive.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("store: workload ttl must be positive, got %s", ttl)
	}
	return nil
}

// isNotFound reports whether err is ErrNotFound.
func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
