package identity

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMarshalLoad(t *testing.T) {
	clk := newClock()
	opts := CAOptions{TrustDomain: "mesh.local", Now: clk.Now}
	ca, err := NewRootCA(opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := ca.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.BundlePEM(), ca.BundlePEM()) || back.Kind() != KindRoot || back.Rotation().Phase != PhaseStable {
		t.Fatalf("loaded CA differs: %v", back.Rotation())
	}
	again, err := back.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("marshal after load differs (%v)", err)
	}
	chain, err := back.Sign(csrFor(t, p256(t), []string{shopOrders}, nil, nil), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyLeaf(chain, ca.Bundle(), clk.Now()); err != nil {
		t.Errorf("a leaf of the loaded CA does not verify against the original bundle: %v", err)
	}

	// Mid-rotation state survives a round trip.
	if err := ca.BeginRootRotation(); err != nil {
		t.Fatal(err)
	}
	mid, _ := ca.Marshal()
	back, err = LoadCA(mid, opts)
	if err != nil {
		t.Fatal(err)
	}
	if r := back.Rotation(); r.Phase != PhasePropagating || r.Roots != 2 || !r.SignsAt.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("loaded rotation %+v", r)
	}
	other, err := NewRootCA(opts)
	if err != nil {
		t.Fatal(err)
	}

	// reseal replaces the state and recomputes the checksum, as a deliberate edit would.
	edit := func(f func(body map[string]any)) []byte {
		var env stateEnvelope
		if err := json.Unmarshal(data, &env); err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(env.State, &body); err != nil {
			t.Fatal(err)
		}
		f(body)
		env.State, _ = json.Marshal(body)
		sum := sha256.Sum256(env.State)
		env.SHA256 = hex.EncodeToString(sum[:])
		out, _ := json.Marshal(env)
		return out
	}
	otherData, _ := other.Marshal()
	var otherEnv stateEnvelope
	_ = json.Unmarshal(otherData, &otherEnv)
	var otherBody stateBody
	_ = json.Unmarshal(otherEnv.State, &otherBody)

	tests := []struct {
		desc string
		data []byte
		opts CAOptions
		want string
	}{
		{"a changed byte", bytes.Replace(data, []byte(`"phase":"stable"`), []byte(`"phase":"overlap"`), 1), opts, "checksum"},
		{"not JSON", []byte("{"), opts, "bad CA state"},
		{"empty", nil, opts, "bad CA state"},
		{"another format", bytes.Replace(data, []byte(stateFormat), []byte("meshgate-ca/9"), 1), opts, "format"},
		{"another trust domain", data, CAOptions{TrustDomain: "other.local", Now: clk.Now}, "trust domain"},
		{"another CA's key", edit(func(b map[string]any) { b["signing"].(map[string]any)["key"] = otherBody.Signing.Key }), opts, "key does not match"},
		{"another CA's roots", edit(func(b map[string]any) { b["signing"].(map[string]any)["roots"] = otherBody.Signing.Roots }), opts, "root CA must sign with its own"},
		{"overlap without a retirement time", edit(func(b map[string]any) { b["phase"] = PhaseOverlap }), opts, "retirement time"},
		{"propagating without an incoming root", edit(func(b map[string]any) { b["phase"] = PhasePropagating; b["signs_at"] = clk.Now() }), opts, "incoming"},
		{"unknown phase", edit(func(b map[string]any) { b["phase"] = "done" }), opts, "unknown rotation phase"},
		{"unknown kind", edit(func(b map[string]any) { b["kind"] = "magic" }), opts, "unknown CA kind"},
		{"unknown field", edit(func(b map[string]any) { b["extra"] = 1 }), opts, "unknown field"},
		{"no key", edit(func(b map[string]any) { b["signing"].(map[string]any)["key"] = "" }), opts, "no PEM private key"},
	}
	for _, tc := range tests {
		_, err := LoadCA(tc.data, tc.opts)
		if !errors.Is(err, ErrBadState) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v (want %q)", tc.desc, err, tc.want)
		}
	}
}
