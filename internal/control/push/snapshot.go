package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
)

// Snapshot is the whole state a proxy holds: every resource it was pushed, at one version.
// A snapshot is never changed once made; treat its resources as read-only.
type Snapshot struct {
	// Version is the state version of the last response merged in.
	Version string
	// Resources holds the resources by "type/name".
	Resources map[string]*controlv1.Resource
}

// Config assembles the proxy's config (Version 1) from the snapshot's listener, route, service,
// authenticator, consumer and plan resources, each list sorted by name, and its telemetry block. Bodies are decoded
// strictly: an unknown field, trailing data, a name that differs from the resource's, or an
// unknown resource type is an error. The result is not defaulted or validated.
func (s *Snapshot) Config() (*config.Config, error) {
	cfg := &config.Config{Version: 1}
	for _, k := range slices.Sorted(maps.Keys(s.Resources)) { // "type/name": sorted by type, then name
		r := s.Resources[k]
		var err error
		switch r.GetType() {
		case TypeListener:
			cfg.Listeners, err = decodeInto(cfg.Listeners, r, func(v *config.Listener) string { return v.Name })
		case TypeRoute:
			cfg.Routes, err = decodeInto(cfg.Routes, r, func(v *config.Route) string { return v.Name })
		case TypeService:
			cfg.Services, err = decodeInto(cfg.Services, r, func(v *config.Service) string { return v.Name })
		case TypeAuthenticator:
			cfg.Authenticators, err = decodeInto(cfg.Authenticators, r, func(v *config.Authenticator) string { return v.Name })
		case TypeConsumer:
			cfg.Consumers, err = decodeInto(cfg.Consumers, r, func(v *config.Consumer) string { return v.Name })
		case TypePlan:
			cfg.Plans, err = decodeInto(cfg.Plans, r, func(v *config.Plan) string { return v.Name })
		case TypeTelemetry:
			if r.GetName() != TelemetryName {
				err = fmt.Errorf("push: resource %s: the telemetry resource is named %q", k, TelemetryName)
				break
			}
			var t config.Telemetry
			if err = decodeStrict(r.GetBody(), &t); err != nil {
				err = fmt.Errorf("push: resource %s: %w", k, err)
				break
			}
			cfg.Telemetry = &t
		case TypeBundle, TypeRevocations, TypeEdgeKey:
		default:
			err = fmt.Errorf("push: resource %s: unknown type %q", k, r.GetType())
		}
		if err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// EdgeKey returns the mesh's edge context key, or nil.
func (s *Snapshot) EdgeKey() []byte {
	if r := s.Resources[Key(TypeEdgeKey, EdgeKeyName)]; r != nil {
		return r.GetBody()
	}
	return nil
}

// Revocations returns the revoked identities the snapshot carries.
func (s *Snapshot) Revocations() ([]state.Revocation, error) {
	r := s.Resources[Key(TypeRevocations, RevocationsName)]
	if r == nil {
		return nil, nil
	}
	var out []state.Revocation
	if err := json.Unmarshal(r.GetBody(), &out); err != nil {
		return nil, fmt.Errorf("push: revocations: %w", err)
	}
	return out, nil
}

// Bundle returns the PEM trust bundle the snapshot carries, or nil.
func (s *Snapshot) Bundle() []byte {
	if r := s.Resources[Key(TypeBundle, BundleName)]; r != nil {
		return r.GetBody()
	}
	return nil
}

// versions maps each resource's key to its version (what the proxy tells the control plane it
// holds).
func (s *Snapshot) versions() map[string]string {
	if s == nil {
		return nil
	}
	m := make(map[string]string, len(s.Resources))
	for k, r := range s.Resources {
		m[k] = r.GetVersion()
	}
	return m
}

// decodeInto decodes r's body strictly as a T, checks its name and appends it to list.
func decodeInto[T any](list []T, r *controlv1.Resource, name func(*T) string) ([]T, error) {
	var v T
	if err := decodeStrict(r.GetBody(), &v); err != nil {
		return list, fmt.Errorf("push: resource %s: %w", Key(r.GetType(), r.GetName()), err)
	}
	if n := name(&v); n != r.GetName() {
		return list, fmt.Errorf("push: resource %s: its body is named %q", Key(r.GetType(), r.GetName()), n)
	}
	return append(list, v), nil
}

// decodeStrict decodes one JSON value refusing unknown fields and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// merge returns base with resp applied: resp's resources alone when it is full, otherwise
// base's resources with resp's added or replaced and its removed ones deleted.
func merge(base *Snapshot, resp *controlv1.DiscoveryResponse) (*Snapshot, error) {
	next := &Snapshot{Version: resp.GetVersionInfo()}
	if resp.GetFull() || base == nil {
		next.Resources = make(map[string]*controlv1.Resource, len(resp.GetResources()))
	} else {
		next.Resources = maps.Clone(base.Resources)
		for _, k := range resp.GetRemoved() {
			delete(next.Resources, k)
		}
	}
	for _, r := range resp.GetResources() {
		if err := checkResource(r); err != nil {
			return nil, err
		}
		next.Resources[Key(r.GetType(), r.GetName())] = r
	}
	return next, nil
}

// checkResource refuses a resource without a type or a name.
func checkResource(r *controlv1.Resource) error {
	if r.GetType() == "" || r.GetName() == "" {
		return fmt.Errorf("push: a resource has no type or name (%q/%q)", r.GetType(), r.GetName())
	}
	return nil
}
