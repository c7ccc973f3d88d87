package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/meshgate/meshgate/internal/config"
)

// Fingerprint returns a digest of every field of svc: two services have the same fingerprint
// exactly when they configure the same cluster. The engine compares fingerprints across a config
// reload to keep the Cluster (and its pools and health state) of an unchanged service. Endpoint
// order counts, since round robin follows it. The digest is the hex SHA-256 of the service's JSON
// form, which is deterministic and covers fields added to config.Service later without change here.
func Fingerprint(svc *config.Service) string {
	b, err := json.Marshal(svc)
	if err != nil {
		// config.Service holds only strings, numbers, booleans, slices and pointers to
		// structs of those, which always marshal.
		panic("cluster: fingerprint: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SettingsFingerprint returns a digest of every field of svc except its endpoints: two services
// with the same settings fingerprint differ at most in their endpoint lists (addresses, weights,
// order), which UpdateEndpoints applies to a running Cluster in place.
func SettingsFingerprint(svc *config.Service) string {
	s := *svc
	s.Endpoints = nil
	return Fingerprint(&s)
}

// Equal reports whether a and b configure the same cluster, that is, have the same Fingerprint.
func Equal(a, b *config.Service) bool {
	return Fingerprint(a) == Fingerprint(b)
}
