package push

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// cacheMagic starts every cache file; the SHA-256 of the payload follows it on the first line.
const cacheMagic = "meshgate-push-cache 1 sha256:"

// ErrCorruptCache is the error LoadCache wraps when the cache file is truncated, corrupted or
// altered.
var ErrCorruptCache = errors.New("push: the cached config is corrupt")

// cacheFile is the payload of a cache file.
type cacheFile struct {
	Version   string          `json:"version"`
	Resources []cacheResource `json:"resources"`
}

type cacheResource struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Body    []byte `json:"body"`
}

// encodeCache returns the cache file holding s: a header line with the payload's SHA-256, then
// the payload (JSON).
func encodeCache(s *Snapshot) ([]byte, error) {
	cf := cacheFile{Version: s.Version, Resources: make([]cacheResource, 0, len(s.Resources))}
	for _, r := range s.Resources {
		cf.Resources = append(cf.Resources, cacheResource{Type: r.GetType(), Name: r.GetName(), Version: r.GetVersion(), Body: r.GetBody()})
	}
	payload, err := json.Marshal(cf)
	if err != nil {
		return nil, fmt.Errorf("push: encode the cache: %w", err)
	}
	sum := sha256.Sum256(payload)
	out := make([]byte, 0, len(cacheMagic)+2*len(sum)+1+len(payload))
	out = append(out, cacheMagic...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return append(out, payload...), nil
}

// decodeCache parses a cache file, refusing it unless its digest matches its payload.
func decodeCache(data []byte) (*Snapshot, error) {
	header, payload, ok := bytes.Cut(data, []byte{'\n'})
	if !ok || !bytes.HasPrefix(header, []byte(cacheMagic)) {
		return nil, fmt.Errorf("%w: no cache header", ErrCorruptCache)
	}
	want, err := hex.DecodeString(string(header[len(cacheMagic):]))
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: malformed digest", ErrCorruptCache)
	}
	if sum := sha256.Sum256(payload); !bytes.Equal(sum[:], want) {
		return nil, fmt.Errorf("%w: its digest does not match its content (truncated or altered)", ErrCorruptCache)
	}
	var cf cacheFile
	if err := decodeStrict(payload, &cf); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptCache, err)
	}
	s := &Snapshot{Version: cf.Version, Resources: make(map[string]*controlv1.Resource, len(cf.Resources))}
	for _, r := range cf.Resources {
		res := &controlv1.Resource{Type: r.Type, Name: r.Name, Version: r.Version, Body: r.Body}
		if err := checkResource(res); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorruptCache, err)
		}
		k := Key(r.Type, r.Name)
		if _, dup := s.Resources[k]; dup {
			return nil, fmt.Errorf("%w: resource %s twice", ErrCorruptCache, k)
		}
		s.Resources[k] = res
	}
	return s, nil
}
