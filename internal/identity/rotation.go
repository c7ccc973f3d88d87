package identity

import (
	"crypto/x509"
	"fmt"
	"time"
)

// Phases of a rotation.
const (
	// PhaseStable means no rotation is in progress: the bundle holds the signing roots only.
	PhaseStable = "stable"
	// PhasePropagating means a new signing certificate is waiting for its roots to reach every
	// proxy: the bundle holds the old and the new roots, and the old certificate still signs.
	PhasePropagating = "propagating"
	// PhaseOverlap means the new certificate signs and the old roots stay in the bundle until
	// every certificate they signed has expired.
	PhaseOverlap = "overlap"
)

// rotation is the persisted progress of a rotation.
type rotation struct {
	phase     string
	started   time.Time // when the rotation began
	signsAt   time.Time // when the next authority starts signing (PhasePropagating)
	switched  time.Time // when it did (PhaseOverlap)
	retiresAt time.Time // when the old roots leave the bundle (PhaseOverlap)
}

// RotationStatus reports the CA's rotation phase and its times; zero times are omitted.
type RotationStatus struct {
	// Phase is PhaseStable, PhasePropagating or PhaseOverlap.
	Phase string `json:"phase"`
	// Kind is KindRoot or KindIntermediate: the kind of the certificate that signs now.
	Kind string `json:"kind"`
	// Started is when the rotation in progress began.
	Started time.Time `json:"started,omitzero"`
	// SignsAt is when the incoming certificate starts signing (PhasePropagating).
	SignsAt time.Time `json:"signs_at,omitzero"`
	// Switched is when the incoming certificate started signing (PhaseOverlap).
	Switched time.Time `json:"switched,omitzero"`
	// RetiresAt is when the old roots leave the bundle (PhaseOverlap).
	RetiresAt time.Time `json:"retires_at,omitzero"`
	// SigningNotAfter is when the signing certificate (or its chain) expires.
	SigningNotAfter time.Time `json:"signing_not_after"`
	// Roots is the number of roots in the bundle.
	Roots int `json:"roots"`
}

// String describes the status in one line, for logs.
func (s RotationStatus) String() string {
	t := func(x time.Time) string { return x.UTC().Format(time.RFC3339) }
	switch s.Phase {
	case PhasePropagating:
		return fmt.Sprintf("%s %s CA, %d roots, new signer from %s", s.Phase, s.Kind, s.Roots, t(s.SignsAt))
	case PhaseOverlap:
		return fmt.Sprintf("%s %s CA, %d roots, old roots retire at %s", s.Phase, s.Kind, s.Roots, t(s.RetiresAt))
	}
	return fmt.Sprintf("%s %s CA, %d roots, signer valid until %s", s.Phase, s.Kind, s.Roots, t(s.SigningNotAfter))
}

// Rotation reports the rotation phase and times.
func (ca *CA) Rotation() RotationStatus {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	return RotationStatus{
		Phase:           ca.rot.phaseName(),
		Kind:            ca.kind,
		Started:         ca.rot.started,
		SignsAt:         ca.rot.signsAt,
		Switched:        ca.rot.switched,
		RetiresAt:       ca.rot.retiresAt,
		SigningNotAfter: ca.current.notAfter(),
		Roots:           len(ca.bundleLocked()),
	}
}

func (r rotation) phaseName() string {
	if r.phase == "" {
		return PhaseStable
	}
	return r.phase
}

// BeginRootRotation generates a new root and adds it to the bundle; the old root keeps signing
// until Propagation has passed and Advance switches to the new one. It is refused (ErrRotation)
// while a rotation is in progress and for a CA that signs with an operator's intermediate (use
// ReplaceIntermediate).
func (ca *CA) BeginRootRotation() error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if ca.kind != KindRoot {
		return fmt.Errorf("identity: %w: the CA signs with an operator-supplied intermediate; supply a new one instead", ErrRotation)
	}
	if p := ca.rot.phaseName(); p != PhaseStable {
		return fmt.Errorf("identity: %w: a rotation is already in progress (phase %s)", ErrRotation, p)
	}
	now := ca.opts.Now()
	next, err := generateRoot(ca.td, now)
	if err != nil {
		return err
	}
	ca.next, ca.nextKind = next, KindRoot
	ca.rot = rotation{phase: PhasePropagating, started: now, signsAt: now.Add(ca.opts.Propagation)}
	return nil
}

// ReplaceIntermediate begins the replacement of the signing certificate by an operator-supplied
// intermediate, checked as NewIntermediateCA checks one. When its roots are already in the
// bundle it signs at once; otherwise its roots join the bundle and it signs once Propagation
// has passed (Advance). Roots no longer needed stay in the bundle for MaxTTL after the switch.
// It is refused (ErrRotation) while a rotation is in progress.
func (ca *CA) ReplaceIntermediate(certPEM, keyPEM, chainPEM []byte) error {
	now := ca.opts.Now()
	next, err := parseIntermediate(ca.td, certPEM, keyPEM, chainPEM, now, ca.opts.MinTTL)
	if err != nil {
		return err
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if p := ca.rot.phaseName(); p != PhaseStable {
		return fmt.Errorf("identity: %w: a rotation is already in progress (phase %s)", ErrRotation, p)
	}
	signsAt := now
	bundle := ca.bundleLocked()
	for _, r := range next.roots {
		if !containsCert(bundle, r) {
			signsAt = now.Add(ca.opts.Propagation)
		}
	}
	ca.next = next
	ca.nextKind = KindIntermediate
	ca.rot = rotation{phase: PhasePropagating, started: now, signsAt: signsAt}
	ca.advanceLocked(now)
	return nil
}

// Advance moves a rotation on when its time has come: after Propagation the new certificate
// signs, and after MaxTTL more the old roots leave the bundle. It reports whether the state
// changed (and so should be stored again). The control plane's leader calls it periodically.
func (ca *CA) Advance() (changed bool, err error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.advanceLocked(ca.opts.Now()), nil
}

func (ca *CA) advanceLocked(now time.Time) bool {
	changed := false
	for range 2 {
		switch ca.rot.phaseName() {
		case PhasePropagating:
			if now.Before(ca.rot.signsAt) {
				return changed
			}
			var retiring []*x509.Certificate
			for _, r := range ca.bundleLocked() {
				if !containsCert(ca.next.roots, r) {
					retiring = append(retiring, r)
				}
			}
			ca.current, ca.next, ca.retiring = ca.next, nil, retiring
			ca.kind, ca.nextKind = ca.nextKind, ""
			ca.rot.phase, ca.rot.switched, ca.rot.retiresAt = PhaseOverlap, now, now.Add(ca.opts.MaxTTL)
			changed = true
		case PhaseOverlap:
			if now.Before(ca.rot.retiresAt) && len(ca.retiring) > 0 {
				return changed
			}
			ca.retiring = nil
			ca.rot = rotation{phase: PhaseStable}
			return true
		default:
			return changed
		}
	}
	return changed
}
