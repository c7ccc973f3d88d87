package state

import (
	"time"

	"github.com/meshgate/meshgate/internal/identity"
)

// Revocation refuses the certificates of one workload identity issued before a time: an
// operator's answer to a leaked key. The workload obtains a new certificate with a join token.
type Revocation struct {
	// Identity is the revoked SPIFFE ID.
	Identity string `json:"identity"`
	// Before is the revocation time: certificates issued before it are refused (a leaf's
	// validity starts identity.Backdate before its issue).
	Before time.Time `json:"before"`
	// Reason is the operator's note.
	Reason string `json:"reason,omitempty"`
}

// Revoked returns the revocation that refuses a certificate of identity id valid from
// notBefore, if any.
func Revoked(rs []Revocation, id string, notBefore time.Time) (Revocation, bool) {
	issued := notBefore.Add(identity.Backdate)
	for _, r := range rs {
		if r.Identity == id && issued.Before(r.Before) {
			return r, true
		}
	}
	return Revocation{}, false
}
