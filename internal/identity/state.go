package identity

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// stateFormat names the layout of a marshalled CA.
const stateFormat = "meshgate-ca/1"

// stateEnvelope is the stored form of a CA: the state as JSON and its SHA-256, so a damaged or
// hand-edited blob is refused instead of half-used.
type stateEnvelope struct {
	Format string          `json:"format"`
	State  json.RawMessage `json:"state"`
	SHA256 string          `json:"sha256"`
}

// stateBody is a CA's whole state. Certificates and keys are PEM.
type stateBody struct {
	TrustDomain string          `json:"trust_domain"`
	Kind        string          `json:"kind"`
	Signing     authorityState  `json:"signing"`
	Next        *authorityState `json:"next,omitempty"`
	NextKind    string          `json:"next_kind,omitempty"`
	Retiring    string          `json:"retiring_roots,omitempty"`
	Phase       string          `json:"phase"`
	Started     time.Time       `json:"started,omitzero"`
	SignsAt     time.Time       `json:"signs_at,omitzero"`
	Switched    time.Time       `json:"switched,omitzero"`
	RetiresAt   time.Time       `json:"retires_at,omitzero"`
}

type authorityState struct {
	Cert  string `json:"cert"`
	Key   string `json:"key"`
	Chain string `json:"chain,omitempty"`
	Roots string `json:"roots"`
}

// Marshal returns the CA's whole state — signing certificate and key, bundle roots, rotation
// phase and times — as one JSON document with a checksum, for the control plane to store. It
// holds private keys: store it where only the control plane can read it.
func (ca *CA) Marshal() ([]byte, error) {
	ca.mu.RLock()
	defer ca.mu.RUnlock()
	body := stateBody{
		TrustDomain: ca.td.Name(),
		Kind:        ca.kind,
		Retiring:    string(certsPEM(ca.retiring)),
		Phase:       ca.rot.phaseName(),
		Started:     ca.rot.started,
		SignsAt:     ca.rot.signsAt,
		Switched:    ca.rot.switched,
		RetiresAt:   ca.rot.retiresAt,
	}
	var err error
	if body.Signing, err = marshalAuthority(ca.current); err != nil {
		return nil, err
	}
	if ca.next != nil {
		n, err := marshalAuthority(ca.next)
		if err != nil {
			return nil, err
		}
		body.Next, body.NextKind = &n, ca.nextKind
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("identity: marshal CA: %w", err)
	}
	sum := sha256.Sum256(raw)
	out, err := json.Marshal(stateEnvelope{Format: stateFormat, State: raw, SHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return nil, fmt.Errorf("identity: marshal CA: %w", err)
	}
	return out, nil
}

func marshalAuthority(a *authority) (authorityState, error) {
	k, err := keyPEM(a.key)
	if err != nil {
		return authorityState{}, err
	}
	return authorityState{
		Cert:  string(certsPEM([]*x509.Certificate{a.cert})),
		Key:   string(k),
		Chain: string(certsPEM(a.chain)),
		Roots: string(certsPEM(a.roots)),
	}, nil
}

// LoadCA restores a CA from Marshal's output, with opts for its TTLs, propagation time and
// clock. It refuses (ErrBadState) a blob whose checksum does not match, whose trust domain is
// not opts.TrustDomain, whose keys do not match their certificates, whose signing certificate
// does not chain to its roots, or whose rotation phase contradicts its certificates.
func LoadCA(data []byte, opts CAOptions) (*CA, error) {
	o, td, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("identity: %w: "+format, append([]any{ErrBadState}, args...)...)
	}
	var env stateEnvelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, bad("%w", err)
	}
	if env.Format != stateFormat {
		return nil, bad("format %q, want %q", env.Format, stateFormat)
	}
	// The checksum is of the compact state, so a store that re-indents JSON does no harm.
	var compact bytes.Buffer
	if err := json.Compact(&compact, env.State); err != nil {
		return nil, bad("%w", err)
	}
	sum := sha256.Sum256(compact.Bytes())
	if hex.EncodeToString(sum[:]) != env.SHA256 {
		return nil, bad("checksum mismatch: the stored CA was altered or damaged")
	}
	var body stateBody
	dec = json.NewDecoder(bytes.NewReader(env.State))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, bad("%w", err)
	}
	if body.TrustDomain != td.Name() {
		return nil, bad("%w: the stored CA is for trust domain %q, not %q", ErrTrustDomain, body.TrustDomain, td.Name())
	}
	ca := &CA{opts: o, td: td, kind: body.Kind}
	if ca.current, err = loadAuthority(body.Signing, body.Kind); err != nil {
		return nil, bad("signing certificate: %w", err)
	}
	if body.Next != nil {
		if ca.next, err = loadAuthority(*body.Next, body.NextKind); err != nil {
			return nil, bad("incoming certificate: %w", err)
		}
		ca.nextKind = body.NextKind
	}
	if ca.retiring, err = parseCertsPEM([]byte(body.Retiring)); err != nil {
		return nil, bad("retiring roots: %w", err)
	}
	for _, r := range ca.retiring {
		if !r.IsCA || !isSelfSigned(r) {
			return nil, bad("retiring root %q is not a self-signed CA", r.Subject)
		}
	}
	ca.rot = rotation{phase: body.Phase, started: body.Started, signsAt: body.SignsAt, switched: body.Switched, retiresAt: body.RetiresAt}
	switch body.Phase {
	case PhaseStable:
		if ca.next != nil || len(ca.retiring) > 0 {
			return nil, bad("phase %s with an incoming certificate or retiring roots", body.Phase)
		}
		ca.rot.phase = ""
	case PhasePropagating:
		if ca.next == nil || len(ca.retiring) > 0 || body.SignsAt.IsZero() {
			return nil, bad("phase %s needs an incoming certificate, a switch time and no retiring roots", body.Phase)
		}
	case PhaseOverlap:
		if ca.next != nil || body.RetiresAt.IsZero() {
			return nil, bad("phase %s needs a retirement time and no incoming certificate", body.Phase)
		}
	default:
		return nil, bad("unknown rotation phase %q", body.Phase)
	}
	return ca, nil
}

// loadAuthority parses and checks one authority of a stored CA.
func loadAuthority(s authorityState, kind string) (*authority, error) {
	certs, err := parseCertsPEM([]byte(s.Cert))
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%d certificates, want one", len(certs))
	}
	a := &authority{cert: certs[0]}
	if a.key, err = parseKeyPEM([]byte(s.Key)); err != nil {
		return nil, err
	}
	if !keyMatches(a.key, a.cert.PublicKey) {
		return nil, errors.New("the key does not match the certificate")
	}
	if !a.cert.IsCA || a.cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("not a CA certificate")
	}
	if a.chain, err = parseCertsPEM([]byte(s.Chain)); err != nil {
		return nil, err
	}
	if a.roots, err = parseCertsPEM([]byte(s.Roots)); err != nil {
		return nil, err
	}
	if len(a.roots) == 0 {
		return nil, errors.New("no roots")
	}
	for _, r := range a.roots {
		if !r.IsCA || !isSelfSigned(r) {
			return nil, fmt.Errorf("root %q is not a self-signed CA", r.Subject)
		}
	}
	switch kind {
	case KindRoot:
		if !isSelfSigned(a.cert) || len(a.chain) != 0 || len(a.roots) != 1 || !a.roots[0].Equal(a.cert) {
			return nil, errors.New("a root CA must sign with its own self-signed root")
		}
	case KindIntermediate:
	default:
		return nil, fmt.Errorf("unknown CA kind %q", kind)
	}
	if err := verifyChain(a.cert, a.chain, a.roots, a.notBefore()); err != nil {
		return nil, fmt.Errorf("does not chain to its roots: %w", err)
	}
	return a, nil
}
