package control

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/meshgate/meshgate/internal/control/store"
)

// edgeKeyKey is the store key of the mesh's edge context key.
const edgeKeyKey = "edge-context-key"

// loadEdgeKey reads the mesh's edge context key, creating it on first start (replicas share
// the first one stored).
func (s *Server) loadEdgeKey(ctx context.Context) error {
	k, err := s.store.GetKey(ctx, edgeKeyKey)
	if errors.Is(err, store.ErrNotFound) {
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return err
		}
		err = s.store.PutKey(ctx, edgeKeyKey, fresh, true)
		if errors.Is(err, store.ErrExists) {
			k, err = s.store.GetKey(ctx, edgeKeyKey)
		} else {
			k = fresh
		}
	}
	if err != nil {
		return fmt.Errorf("control: edge context key: %w", err)
	}
	if len(k) < 32 {
		return fmt.Errorf("control: the stored edge context key is %d bytes, want 32", len(k))
	}
	s.edgeKey = k
	return nil
}
