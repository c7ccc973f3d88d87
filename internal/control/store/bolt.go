package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Bucket names of the bolt file.
var (
	bucketConfig    = []byte("config")    // big-endian version → JSON Revision
	bucketWorkloads = []byte("workloads") // workload ID → JSON boltWorkload
	bucketKeys      = []byte("keys")      // name → value
)

// BoltOptions configures OpenBolt.
type BoltOptions struct {
	// HistoryLimit is how many config revisions are kept; older ones are pruned on Apply.
	// Default 100.
	HistoryLimit int
	// SweepInterval is how often expired workloads are deleted. Default 1s.
	SweepInterval time.Duration
	// LockTimeout is how long OpenBolt waits for another process to release the file before it
	// fails. Default 1s.
	LockTimeout time.Duration
	// Registerer, when set, receives the store's metrics
	// (meshgate_control_store_operations_total, meshgate_control_store_up).
	Registerer prometheus.Registerer
	// Log receives the sweeper's failures. Default: discarded.
	Log *slog.Logger
}

// Bolt is the embedded Store: one bbolt file, one process. Its watches are in-process
// notifications and it always leads.
type Bolt struct {
	db   *bolt.DB
	path string
	opts BoltOptions
	m    *metrics
	log  *slog.Logger

	config    signals
	workloads signals
	bg        goroutines

	mu        sync.Mutex
	leader    string
	campaigns uint64
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating with mode 0600) the store file at path and starts the workload
// sweeper. The file is locked for this process: a second opener fails after opts.LockTimeout
// with an error naming the file. Every stored workload's expiry is extended to at least now plus
// its TTL, so workloads that could not heartbeat while the control plane was down keep their
// endpoints until they can.
func OpenBolt(path string, opts BoltOptions) (*Bolt, error) {
	opts.HistoryLimit = historyLimit(opts.HistoryLimit)
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer, "bolt")
	if err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("store: %s is locked by another process (is another control plane using this data directory?): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	b := &Bolt{db: db, path: path, opts: opts, m: m, log: log}
	b.bg.init()
	if err := b.update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketConfig, bucketWorkloads, bucketKeys} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return extendWorkloads(tx, time.Now())
	}); err != nil {
		_ = db.Close()
		return nil, err
	}
	b.bg.spawn(b.sweepLoop)
	return b, nil
}

// Path returns the store file's path.
func (b *Bolt) Path() string { return b.path }

// update runs fn in a write transaction; a failure that is not a contract outcome (the disk is
// full, the file system read-only, the store closed) wraps ErrUnavailable. A failed transaction
// changes nothing.
func (b *Bolt) update(fn func(tx *bolt.Tx) error) error {
	err := b.db.Update(fn)
	if err == nil || isContract(err) {
		return err
	}
	return fmt.Errorf("store: write %s: %w: %w", b.path, ErrUnavailable, err)
}

// view runs fn in a read transaction, wrapping failures like update.
func (b *Bolt) view(fn func(tx *bolt.Tx) error) error {
	err := b.db.View(fn)
	if err == nil || isContract(err) {
		return err
	}
	return fmt.Errorf("store: read %s: %w: %w", b.path, ErrUnavailable, err)
}

// isContract reports whether err is one of the contract's outcomes rather than a failure.
func isContract(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrExists) ||
		errors.Is(err, errBadInput)
}

// errBadInput marks a refused argument, which is neither a contract outcome nor an outage.
var errBadInput = errors.New("store: invalid argument")

// GetKey returns a named value, or ErrNotFound.
func (b *Bolt) GetKey(ctx context.Context, key string) (value []byte, err error) {
	defer func() { err = b.m.observe("get_key", err) }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = b.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketKeys).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%w: key %q", ErrNotFound, key)
		}
		value = append([]byte(nil), v...)
		return nil
	})
	return value, err
}

// PutKey stores a named value; with ifAbsent it stores only when the key is unset and returns
// ErrExists otherwise.
func (b *Bolt) PutKey(ctx context.Context, key string, value []byte, ifAbsent bool) (err error) {
	defer func() { err = b.m.observe("put_key", err) }()
	if err := ctx.Err(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", errBadInput)
	}
	return b.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketKeys)
		if ifAbsent && bk.Get([]byte(key)) != nil {
			return fmt.Errorf("%w: %q", ErrExists, key)
		}
		return bk.Put([]byte(key), value)
	})
}

// Campaign leads at once: there is no other replica. The returned channel closes when ctx ends
// or the store closes.
func (b *Bolt) Campaign(ctx context.Context, id string) (<-chan struct{}, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.campaigns++
	n := b.campaigns
	b.leader = id
	b.mu.Unlock()
	lost := make(chan struct{})
	end := func() {
		b.mu.Lock()
		if b.campaigns == n {
			b.leader = ""
		}
		b.mu.Unlock()
		close(lost)
	}
	if !b.bg.spawn(func() {
		select {
		case <-ctx.Done():
		case <-b.bg.done:
		}
		end()
	}) {
		end()
	}
	return lost, nil
}

// Leader returns the id of the last Campaign whose context has not ended, or "".
func (b *Bolt) Leader(ctx context.Context) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leader, nil
}

// Close stops the sweeper and the watches (their channels close) and closes the file.
func (b *Bolt) Close() error {
	if !b.bg.close() {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", b.path, err)
	}
	return nil
}
