package mtls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/control/state"
)

// errRevoked refuses a peer whose certificate was revoked.
var errRevoked = errors.New("peer certificate revoked")

// Revocations are the mesh's revoked identities as the control plane last pushed them, shared
// by a proxy's dialer and acceptor. The zero value revokes nothing.
type Revocations struct {
	list atomic.Pointer[[]state.Revocation]
}

// Set installs the current list.
func (r *Revocations) Set(list []state.Revocation) { r.list.Store(&list) }

// check refuses a peer whose leaf certificate a revocation covers.
func (r *Revocations) check(id spiffeid.ID, chains [][]*x509.Certificate) error {
	if r == nil {
		return nil
	}
	list := r.list.Load()
	if list == nil || len(*list) == 0 || len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	if rev, ok := state.Revoked(*list, id.String(), chains[0][0].NotBefore); ok {
		return fmt.Errorf("%w: %s was revoked at %s (%s)", errRevoked, id, rev.Before.Format(time.RFC3339), rev.Reason)
	}
	return nil
}
