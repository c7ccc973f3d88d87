package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/identity"
)

// revocationsKey is the store key of the revoked identities (a JSON list).
const revocationsKey = "revocations"

// maxRevocations bounds the list every proxy carries.
const maxRevocations = 1000

// errRevocation refuses a revocation request.
var errRevocation = errors.New("control: revocation refused")

// storedRevocations reads the revoked identities.
func (s *Server) storedRevocations(ctx context.Context) ([]state.Revocation, error) {
	data, err := s.store.GetKey(ctx, revocationsKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rs []state.Revocation
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("control: stored revocations: %w", err)
	}
	return rs, nil
}

// Revoke refuses every certificate of the workload identity id issued until now, everywhere:
// the control plane stops serving it and every proxy refuses it as a peer. The workload gets a
// new certificate with a join token (revoke the token too if it leaked with the key).
func (s *Server) Revoke(ctx context.Context, id, reason string) (state.Revocation, error) {
	sid, err := spiffeid.FromString(id)
	if err != nil {
		return state.Revocation{}, fmt.Errorf("%w: %q is not a SPIFFE ID: %v", errRevocation, id, err)
	}
	if !sid.MemberOf(s.trustDomain) {
		return state.Revocation{}, fmt.Errorf("%w: %s is not in trust domain %s", errRevocation, id, s.trustDomain)
	}
	if _, _, err := identity.ParseWorkloadID(sid); err != nil {
		return state.Revocation{}, fmt.Errorf("%w: %v", errRevocation, err)
	}
	rs, err := s.storedRevocations(ctx)
	if err != nil {
		return state.Revocation{}, err
	}
	r := state.Revocation{Identity: sid.String(), Before: s.now().UTC(), Reason: reason}
	rs = slices.DeleteFunc(rs, func(o state.Revocation) bool { return o.Identity == r.Identity })
	if len(rs) >= maxRevocations {
		return state.Revocation{}, fmt.Errorf("%w: %d identities are revoked already", errRevocation, len(rs))
	}
	rs = append(rs, r)
	data, err := json.Marshal(rs)
	if err != nil {
		return state.Revocation{}, err
	}
	if err := s.store.PutKey(ctx, revocationsKey, data, false); err != nil {
		return state.Revocation{}, err
	}
	s.log.Warn("control: identity revoked", "identity", r.Identity, "before", r.Before, "reason", reason)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return r, nil
}

// listRevocations answers GET /v1/revocations.
func (s *Server) listRevocations(w http.ResponseWriter, r *http.Request) {
	rs, err := s.storedRevocations(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", err.Error())
		return
	}
	if rs == nil {
		rs = []state.Revocation{}
	}
	writeJSON(w, http.StatusOK, rs)
}

// revokeRequest is the body of POST /v1/revocations.
type revokeRequest struct {
	Identity string `json:"identity"`
	Reason   string `json:"reason"`
}

// postRevocation answers POST /v1/revocations.
func (s *Server) postRevocation(w http.ResponseWriter, r *http.Request) {
	var req revokeRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	rev, err := s.Revoke(r.Context(), req.Identity, req.Reason)
	switch {
	case errors.Is(err, errRevocation):
		writeError(w, http.StatusBadRequest, "revocation_refused", err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", err.Error())
	default:
		writeJSON(w, http.StatusOK, rev)
	}
}
