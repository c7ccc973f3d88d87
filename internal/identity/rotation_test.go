package identity

import (
	"errors"
	"testing"
	"time"
)

// TestRootRotation walks a root rotation with an injected clock: during the overlap leaves of
// both roots verify against the bundle; after the old root is dropped only new-root leaves do.
func TestRootRotation(t *testing.T) {
	clk := newClock()
	opts := CAOptions{TrustDomain: "mesh.local", CertTTL: time.Hour, MaxTTL: 2 * time.Hour, Propagation: 10 * time.Minute, Now: clk.Now}
	ca, err := NewRootCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	// reload stands in for the control plane storing the CA and reading it back at every step.
	reload := func() {
		t.Helper()
		data, err := ca.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if ca, err = LoadCA(data, opts); err != nil {
			t.Fatal(err)
		}
	}
	csr := csrFor(t, p256(t), []string{shopOrders}, nil, nil)
	sign := func() [][]byte {
		t.Helper()
		chain, err := ca.Sign(csr, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		return chain
	}
	oldRoot := ca.Bundle()[0]
	before := sign()

	if changed, _ := ca.Advance(); changed {
		t.Error("Advance changed a stable CA")
	}
	if err := ca.BeginRootRotation(); err != nil {
		t.Fatal(err)
	}
	if err := ca.BeginRootRotation(); !errors.Is(err, ErrRotation) {
		t.Errorf("second rotation: %v", err)
	}
	reload()
	if r := ca.Rotation(); r.Phase != PhasePropagating || r.Roots != 2 || r.Kind != KindRoot {
		t.Fatalf("after begin: %v", r)
	}
	// Propagating: the old root still signs.
	clk.Add(5 * time.Minute)
	if changed, _ := ca.Advance(); changed {
		t.Error("switched before the propagation time")
	}
	during := sign()
	if err := mustLeaf(t, during).CheckSignatureFrom(oldRoot); err != nil {
		t.Errorf("during propagation the leaf is not signed by the old root: %v", err)
	}

	clk.Add(6 * time.Minute)
	if changed, _ := ca.Advance(); !changed {
		t.Fatal("no switch after the propagation time")
	}
	reload()
	r := ca.Rotation()
	if r.Phase != PhaseOverlap || r.Roots != 2 || !r.RetiresAt.Equal(clk.Now().Add(2*time.Hour)) {
		t.Fatalf("after switch: %v", r)
	}
	after := sign()
	if err := mustLeaf(t, after).CheckSignatureFrom(oldRoot); err == nil {
		t.Error("after the switch the old root still signs")
	}
	for name, chain := range map[string][][]byte{"before": before, "during": during, "after": after} {
		if err := verifyLeaf(chain, ca.Bundle(), clk.Now()); err != nil {
			t.Errorf("overlap: the %s leaf does not verify: %v", name, err)
		}
	}
	if err := ca.BeginRootRotation(); !errors.Is(err, ErrRotation) {
		t.Errorf("rotation during the overlap: %v", err)
	}

	clk.Add(time.Hour)
	if changed, _ := ca.Advance(); changed {
		t.Error("old root dropped before MaxTTL")
	}
	clk.Add(time.Hour)
	if changed, _ := ca.Advance(); !changed {
		t.Fatal("old root not dropped after MaxTTL")
	}
	reload()
	if r := ca.Rotation(); r.Phase != PhaseStable || r.Roots != 1 {
		t.Fatalf("after retirement: %v", r)
	}
	bundle := ca.Bundle()
	if bundle[0].Equal(oldRoot) {
		t.Fatal("the old root is still the bundle")
	}
	// Judged at a time the leaves were valid, only the new root's leaf verifies.
	at := mustLeaf(t, after).NotBefore.Add(time.Minute)
	if err := verifyLeaf(after, bundle, at); err != nil {
		t.Errorf("new-root leaf: %v", err)
	}
	for name, chain := range map[string][][]byte{"before": before, "during": during} {
		if err := verifyLeaf(chain, bundle, at); err == nil {
			t.Errorf("the %s leaf of the old root still verifies", name)
		}
	}
	// Every old-root leaf had expired by then.
	for _, chain := range [][][]byte{before, during} {
		if na := mustLeaf(t, chain).NotAfter; na.After(clk.Now()) {
			t.Errorf("an old-root leaf outlives its root's retirement: %s > %s", na, clk.Now())
		}
	}
	// A new rotation may begin.
	if err := ca.BeginRootRotation(); err != nil {
		t.Error(err)
	}
}
