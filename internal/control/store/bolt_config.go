package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// versionKey is the bolt key of a config version: 8 bytes big-endian, so keys sort by version.
func versionKey(v uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, v)
	return k
}

// lastVersion returns the newest stored version of the config bucket, or 0.
func lastVersion(bk *bolt.Bucket) uint64 {
	k, _ := bk.Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// decodeRevision decodes one stored revision.
func decodeRevision(data []byte) (Revision, error) {
	var rev Revision
	if err := json.Unmarshal(data, &rev); err != nil {
		return Revision{}, fmt.Errorf("store: decode revision: %w", err)
	}
	return rev, nil
}

// Current returns the newest config revision, or ErrNotFound when none was ever stored.
func (b *Bolt) Current(ctx context.Context) (rev Revision, err error) {
	defer func() { err = b.m.observe("current", err) }()
	if err := ctx.Err(); err != nil {
		return Revision{}, err
	}
	err = b.view(func(tx *bolt.Tx) error {
		_, v := tx.Bucket(bucketConfig).Cursor().Last()
		if v == nil {
			return fmt.Errorf("%w: no config stored", ErrNotFound)
		}
		rev, err = decodeRevision(v)
		return err
	})
	return rev, err
}

// Apply stores rev as version expected+1 when the current version is expected, in one
// transaction that also prunes revisions beyond the history limit.
func (b *Bolt) Apply(ctx context.Context, expected uint64, rev Revision) (out Revision, err error) {
	defer func() { err = b.m.observe("apply", err) }()
	if err := ctx.Err(); err != nil {
		return Revision{}, err
	}
	err = b.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketConfig)
		cur := lastVersion(bk)
		if cur != expected {
			return fmt.Errorf("%w (based on version %d, current is %d)", ErrConflict, expected, cur)
		}
		out = stamp(rev, cur+1, time.Now())
		data, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("%w: encode revision: %w", errBadInput, err)
		}
		if err := bk.Put(versionKey(out.Version), data); err != nil {
			return err
		}
		return pruneBefore(bk, oldestKept(out.Version, b.opts.HistoryLimit))
	})
	if err != nil {
		return Revision{}, err
	}
	b.config.notify()
	return out, nil
}

// pruneBefore deletes the revisions older than version keep.
func pruneBefore(bk *bolt.Bucket, keep uint64) error {
	limit := versionKey(keep)
	var old [][]byte
	c := bk.Cursor()
	for k, _ := c.First(); k != nil && string(k) < string(limit); k, _ = c.Next() {
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := bk.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Get returns one revision, or ErrNotFound.
func (b *Bolt) Get(ctx context.Context, version uint64) (rev Revision, err error) {
	defer func() { err = b.m.observe("get", err) }()
	if err := ctx.Err(); err != nil {
		return Revision{}, err
	}
	err = b.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketConfig).Get(versionKey(version))
		if v == nil {
			return fmt.Errorf("%w: config version %d", ErrNotFound, version)
		}
		rev, err = decodeRevision(v)
		return err
	})
	return rev, err
}

// History returns up to limit revisions, newest first; limit <= 0 returns every kept one.
func (b *Bolt) History(ctx context.Context, limit int) (revs []Revision, err error) {
	defer func() { err = b.m.observe("history", err) }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = b.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketConfig).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(revs) < limit); k, v = c.Prev() {
			rev, err := decodeRevision(v)
			if err != nil {
				return err
			}
			revs = append(revs, rev)
		}
		return nil
	})
	return revs, err
}

// WatchConfig sends the current revision, then every newer one applied through this store, until
// ctx ends or the store closes.
func (b *Bolt) WatchConfig(ctx context.Context) <-chan Revision {
	wakeup, stop := b.config.subscribe()
	out, run := deliverLatest(ctx, b.bg.done, wakeup, stop, func(ctx context.Context) (Revision, bool) {
		rev, err := b.Current(ctx)
		return rev, err == nil
	})
	if !b.bg.spawn(run) {
		stop()
		close(out)
	}
	return out
}
