package push

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
)

// index is one state's resources, each object encoded once and shared (read-only) by every scope
// and stream.
type index struct {
	// version is the state version.
	version uint64
	// cfg is the resolved config the resources were encoded from; scopes select from it.
	cfg *config.Config
	// byKey holds every resource by "type/name".
	byKey map[string]*controlv1.Resource
}

// Version returns the digest push uses as a resource's version: the first 8 bytes of the
// SHA-256 of body, in hex.
func Version(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:8])
}

// buildIndex resolves st and encodes every object of the result. A resource whose bytes equal
// the one of the same key in prev is taken from prev, so unchanged resources keep one copy across
// states. Objects that do not encode are left out and reported.
func buildIndex(st *state.State, prev *index) (*index, []error) {
	cfg, _ := st.Resolve()
	ix := &index{version: st.Version, cfg: cfg, byKey: make(map[string]*controlv1.Resource,
		len(cfg.Listeners)+len(cfg.Routes)+len(cfg.Services)+len(cfg.Authenticators)+len(cfg.Consumers)+len(cfg.Plans)+1)}
	var errs []error
	add := func(typ, name string, v any) {
		body, err := json.Marshal(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("push: encode %s %q: %w", typ, name, err))
			return
		}
		ix.put(typ, name, body, prev)
	}
	for i := range cfg.Listeners {
		add(TypeListener, cfg.Listeners[i].Name, &cfg.Listeners[i])
	}
	for i := range cfg.Routes {
		add(TypeRoute, cfg.Routes[i].Name, &cfg.Routes[i])
	}
	for i := range cfg.Services {
		add(TypeService, cfg.Services[i].Name, &cfg.Services[i])
	}
	for i := range cfg.Authenticators {
		add(TypeAuthenticator, cfg.Authenticators[i].Name, &cfg.Authenticators[i])
	}
	for i := range cfg.Consumers {
		add(TypeConsumer, cfg.Consumers[i].Name, &cfg.Consumers[i])
	}
	for i := range cfg.Plans {
		add(TypePlan, cfg.Plans[i].Name, &cfg.Plans[i])
	}
	if cfg.Telemetry != nil {
		add(TypeTelemetry, TelemetryName, cfg.Telemetry)
	}
	if len(st.TrustBundle) > 0 {
		ix.put(TypeBundle, BundleName, bytes.Clone(st.TrustBundle), prev)
	}
	if len(st.EdgeKey) > 0 {
		ix.put(TypeEdgeKey, EdgeKeyName, bytes.Clone(st.EdgeKey), prev)
	}
	if len(st.Revocations) > 0 {
		add(TypeRevocations, RevocationsName, st.Revocations)
	}
	return ix, errs
}

// put adds one resource, reusing prev's when the bytes are the same.
func (ix *index) put(typ, name string, body []byte, prev *index) {
	key := Key(typ, name)
	v := Version(body)
	if prev != nil {
		if old := prev.byKey[key]; old != nil && old.Version == v && bytes.Equal(old.Body, body) {
			ix.byKey[key] = old
			return
		}
	}
	ix.byKey[key] = &controlv1.Resource{Type: typ, Name: name, Version: v, Body: body}
}
