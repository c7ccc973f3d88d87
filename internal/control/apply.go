package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/store"
)

// ErrInvalid wraps a config that failed validation; its ErrorList names file:line and object.
var ErrInvalid = errors.New("control: config refused")

// Kinds of top-level objects that get and delete address by name, and their YAML keys.
var kinds = map[string]string{
	"listener": "listeners", "listeners": "listeners",
	"route": "routes", "routes": "routes",
	"service": "services", "services": "services",
	"authenticator": "authenticators", "authenticators": "authenticators",
	"consumer": "consumers", "consumers": "consumers",
	"plan": "plans", "plans": "plans",
}

// Apply validates data (with the same code as `meshgate validate`: errors name source:line and
// the object) and stores it as the next config revision. expected, when not nil, is the version
// the change was based on: another change since gives store.ErrConflict. A refused config never
// becomes current.
func (s *Server) Apply(ctx context.Context, source, actor, comment string, data []byte, expected *uint64) (store.Revision, error) {
	if _, err := config.LoadBytes(source, data); err != nil {
		s.metrics.applies.WithLabelValues("invalid").Inc()
		s.log.Warn("control: config refused", "source", source, "actor", actor, "error", err)
		return store.Revision{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cur, err := s.currentRevision(ctx)
	if err != nil {
		s.metrics.applies.WithLabelValues("failed").Inc()
		return store.Revision{}, err
	}
	if expected != nil && *expected != cur.Version {
		s.metrics.applies.WithLabelValues("conflict").Inc()
		return store.Revision{}, fmt.Errorf("%w (based on version %d, current is %d)", store.ErrConflict, *expected, cur.Version)
	}
	rev, err := s.store.Apply(ctx, cur.Version, store.Revision{YAML: data, Source: source, Actor: actor, Comment: comment})
	if err != nil {
		result := "failed"
		if errors.Is(err, store.ErrConflict) {
			result = "conflict"
		}
		s.metrics.applies.WithLabelValues(result).Inc()
		s.log.Error("control: config not stored", "source", source, "actor", actor, "error", err)
		return store.Revision{}, err
	}
	s.metrics.applies.WithLabelValues("applied").Inc()
	s.log.Info("control: config applied", "version", rev.Version, "source", source, "actor", actor,
		"comment", comment, "digest", rev.Digest)
	return rev, nil
}

// Delete removes the object kind/name from the current config and stores the result, if it is
// still valid (deleting a service a route uses is refused, naming the route).
func (s *Server) Delete(ctx context.Context, actor, kind, name string) (store.Revision, error) {
	cur, err := s.currentRevision(ctx)
	if err != nil {
		return store.Revision{}, err
	}
	out, err := withoutObject(cur.YAML, kind, name)
	if err != nil {
		return store.Revision{}, err
	}
	v := cur.Version
	what := fmt.Sprintf("delete %s %s", kind, name)
	return s.Apply(ctx, "<"+what+">", actor, what, out, &v)
}

// Rollback stores revision version's document again as the newest revision.
func (s *Server) Rollback(ctx context.Context, actor string, version uint64) (store.Revision, error) {
	old, err := s.store.Get(ctx, version)
	if err != nil {
		return store.Revision{}, fmt.Errorf("control: revision %d: %w", version, err)
	}
	return s.Apply(ctx, old.Source, actor, fmt.Sprintf("rollback to %d", version), old.YAML, nil)
}

// Object returns one object of the current config as YAML, or the whole document when kind is "".
func (s *Server) Object(ctx context.Context, kind, name string) ([]byte, store.Revision, error) {
	cur, err := s.currentRevision(ctx)
	if err != nil || kind == "" {
		return cur.YAML, cur, err
	}
	key, err := kindKey(kind)
	if err != nil {
		return nil, cur, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(cur.YAML, &doc); err != nil || len(doc.Content) == 0 {
		return nil, cur, fmt.Errorf("%w: no %s %q", store.ErrNotFound, strings.TrimSuffix(key, "s"), name)
	}
	seq := mappingValue(doc.Content[0], key)
	if seq == nil {
		return nil, cur, fmt.Errorf("%w: no %s %q", store.ErrNotFound, strings.TrimSuffix(key, "s"), name)
	}
	if name == "" {
		out, err := encodeYAML(seq)
		return out, cur, err
	}
	for _, item := range seq.Content {
		if n := mappingValue(item, "name"); n != nil && n.Value == name {
			out, err := encodeYAML(item)
			return out, cur, err
		}
	}
	return nil, cur, fmt.Errorf("%w: no %s %q", store.ErrNotFound, strings.TrimSuffix(key, "s"), name)
}

func kindKey(kind string) (string, error) {
	key, ok := kinds[strings.ToLower(kind)]
	if !ok {
		return "", fmt.Errorf("control: unknown kind %q: expected listener, route, service, authenticator, consumer or plan", kind)
	}
	return key, nil
}

// withoutObject returns the YAML document data without the object kind/name, keeping comments
// and the order of everything else.
func withoutObject(data []byte, kind, name string) ([]byte, error) {
	key, err := kindKey(kind)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%w: no %s %q", store.ErrNotFound, strings.TrimSuffix(key, "s"), name)
	}
	seq := mappingValue(doc.Content[0], key)
	if seq != nil {
		for i, item := range seq.Content {
			if n := mappingValue(item, "name"); n != nil && n.Value == name {
				seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
				return encodeYAML(&doc)
			}
		}
	}
	return nil, fmt.Errorf("%w: no %s %q", store.ErrNotFound, strings.TrimSuffix(key, "s"), name)
}

// mappingValue returns the value of key in mapping node m, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func encodeYAML(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("control: encode: %w", err)
	}
	_ = enc.Close()
	return b.Bytes(), nil
}
