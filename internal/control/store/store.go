// Package store keeps the control plane's durable state: the versioned config (with its history),
// the workload registry and small named values (CA material, join tokens). Two implementations
// share one contract: Bolt, embedded in one file under the data directory (one control-plane
// process, no other server), and Etcd, for several control-plane replicas, which also elects the
// leader among them.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/meshgate/meshgate/internal/control/state"
)

// Errors of the store contract; implementations wrap them.
var (
	// ErrNotFound: no such revision, workload or key.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: the current config version is not the one the caller based its change on.
	ErrConflict = errors.New("store: conflict: the config changed meanwhile")
	// ErrUnavailable: the backing store cannot be reached or written (etcd down, disk full).
	ErrUnavailable = errors.New("store: unavailable")
	// ErrExists: PutKey with ifAbsent found the key set.
	ErrExists = errors.New("store: key exists")
)

// Revision is one stored version of the config.
type Revision struct {
	// Version numbers revisions from 1, increasing by one with each.
	Version uint64 `json:"version"`
	// YAML is the config document as applied.
	YAML []byte `json:"yaml"`
	// Source names where the document came from (the file name given to apply), for messages.
	Source string `json:"source"`
	// Actor is who applied it (the CLI user, "rollback", "startup").
	Actor string `json:"actor"`
	// Comment says what the change was ("apply", "delete route x", "rollback to 3").
	Comment string `json:"comment,omitempty"`
	// Time is when it was stored.
	Time time.Time `json:"time"`
	// Digest is the hex SHA-256 of YAML.
	Digest string `json:"digest"`
}

// Store is the control plane's durable state. Every method is safe for concurrent use.
type Store interface {
	// Current returns the newest config revision, or ErrNotFound when none was ever stored.
	Current(ctx context.Context) (Revision, error)
	// Apply stores rev as version expected+1 when the current version is expected (0: none yet),
	// filling Version, Time and Digest; otherwise it returns ErrConflict and stores nothing.
	Apply(ctx context.Context, expected uint64, rev Revision) (Revision, error)
	// Get returns one revision, or ErrNotFound.
	Get(ctx context.Context, version uint64) (Revision, error)
	// History returns up to limit revisions, newest first.
	History(ctx context.Context, limit int) ([]Revision, error)
	// WatchConfig sends every revision that becomes current, from any replica, until ctx ends;
	// the first value sent is the current revision, if any. Slow receivers may miss intermediate
	// revisions but always get the newest.
	WatchConfig(ctx context.Context) <-chan Revision

	// PutWorkload stores w (replacing one with the same ID) to live for ttl unless renewed.
	PutWorkload(ctx context.Context, w state.Workload, ttl time.Duration) error
	// RenewWorkload extends a workload's life by ttl and sets its health; ErrNotFound when it
	// has expired or was never registered.
	RenewWorkload(ctx context.Context, id, health string, ttl time.Duration) (state.Workload, error)
	// DeleteWorkload removes a workload; removing an absent one is not an error.
	DeleteWorkload(ctx context.Context, id string) error
	// Workloads returns the live workloads, sorted by ID.
	Workloads(ctx context.Context) ([]state.Workload, error)
	// WatchWorkloads signals (without blocking, coalescing) whenever the workloads change,
	// including expiries, until ctx ends.
	WatchWorkloads(ctx context.Context) <-chan struct{}

	// GetKey returns a named value, or ErrNotFound.
	GetKey(ctx context.Context, key string) ([]byte, error)
	// PutKey stores a named value; with ifAbsent it stores only when the key is unset and
	// returns ErrExists otherwise (for the one-time creation of a CA shared by replicas).
	PutKey(ctx context.Context, key string, value []byte, ifAbsent bool) error

	// Campaign blocks until this replica leads (or ctx ends) and returns a channel closed when the
	// leadership is lost. A single-process store leads at once.
	Campaign(ctx context.Context, id string) (<-chan struct{}, error)
	// Leader returns the id of the current leader, or "" when none is known.
	Leader(ctx context.Context) (string, error)

	// Close releases the store.
	Close() error
}
