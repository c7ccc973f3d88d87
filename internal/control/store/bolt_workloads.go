package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/meshgate/meshgate/internal/control/state"
)

// storedWorkload is a workload as persisted, with the TTL its registration lives for.
type storedWorkload struct {
	Workload state.Workload `json:"workload"`
	// TTL is the lifetime one heartbeat grants, in nanoseconds.
	TTL time.Duration `json:"ttl"`
}

// prepareWorkload checks a workload to store for ttl, stamps its registration (when unset) and
// expiry, and encodes it: the same for every store.
func prepareWorkload(w state.Workload, ttl time.Duration) ([]byte, error) {
	if err := checkTTL(ttl); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadInput, err)
	}
	if w.ID == "" {
		return nil, fmt.Errorf("%w: workload without an id", errBadInput)
	}
	now := time.Now()
	if w.Registered.IsZero() {
		w.Registered = now.UTC()
	}
	w.Expires = now.Add(ttl).UTC()
	return encodeWorkload(w, ttl)
}

// encodeWorkload and decodeWorkload convert the persisted form.
func encodeWorkload(w state.Workload, ttl time.Duration) ([]byte, error) {
	data, err := json.Marshal(storedWorkload{Workload: w, TTL: ttl})
	if err != nil {
		return nil, fmt.Errorf("%w: encode workload %q: %w", errBadInput, w.ID, err)
	}
	return data, nil
}

func decodeWorkload(data []byte) (storedWorkload, error) {
	var sw storedWorkload
	if err := json.Unmarshal(data, &sw); err != nil {
		return storedWorkload{}, fmt.Errorf("store: decode workload: %w", err)
	}
	return sw, nil
}

// extendWorkloads sets every workload's expiry to at least now plus its TTL.
func extendWorkloads(tx *bolt.Tx, now time.Time) error {
	bk := tx.Bucket(bucketWorkloads)
	type update struct {
		k, v []byte
	}
	var updates []update
	err := bk.ForEach(func(k, v []byte) error {
		sw, err := decodeWorkload(v)
		if err != nil {
			return err
		}
		if until := now.Add(sw.TTL); sw.Workload.Expires.Before(until) {
			sw.Workload.Expires = until
			data, err := encodeWorkload(sw.Workload, sw.TTL)
			if err != nil {
				return err
			}
			updates = append(updates, update{append([]byte(nil), k...), data})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, u := range updates {
		if err := bk.Put(u.k, u.v); err != nil {
			return err
		}
	}
	return nil
}

// PutWorkload stores w (replacing one with the same ID) to live for ttl unless renewed. It sets
// Expires, and Registered when zero.
func (b *Bolt) PutWorkload(ctx context.Context, w state.Workload, ttl time.Duration) (err error) {
	defer func() { err = b.m.observe("put_workload", err) }()
	if err := ctx.Err(); err != nil {
		return err
	}
	data, err := prepareWorkload(w, ttl)
	if err != nil {
		return err
	}
	if err := b.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWorkloads).Put([]byte(w.ID), data)
	}); err != nil {
		return err
	}
	b.workloads.notify()
	return nil
}

// RenewWorkload extends a live workload's life by ttl from now and sets its health (unless
// health is ""); ErrNotFound when it has expired or was never registered. Watchers are signalled
// when the health changes, not for a heartbeat alone.
func (b *Bolt) RenewWorkload(ctx context.Context, id, health string, ttl time.Duration) (w state.Workload, err error) {
	defer func() { err = b.m.observe("renew_workload", err) }()
	if err := ctx.Err(); err != nil {
		return state.Workload{}, err
	}
	if err := checkTTL(ttl); err != nil {
		return state.Workload{}, fmt.Errorf("%w: %w", errBadInput, err)
	}
	changed := false
	err = b.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketWorkloads)
		v := bk.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w: workload %q", ErrNotFound, id)
		}
		sw, err := decodeWorkload(v)
		if err != nil {
			return err
		}
		now := time.Now()
		if !now.Before(sw.Workload.Expires) {
			return fmt.Errorf("%w: workload %q expired", ErrNotFound, id)
		}
		if health != "" && health != sw.Workload.Health {
			sw.Workload.Health = health
			changed = true
		}
		sw.Workload.Expires = now.Add(ttl).UTC()
		data, err := encodeWorkload(sw.Workload, ttl)
		if err != nil {
			return err
		}
		w = sw.Workload
		return bk.Put([]byte(id), data)
	})
	if err != nil {
		return state.Workload{}, err
	}
	if changed {
		b.workloads.notify()
	}
	return w, nil
}

// DeleteWorkload removes a workload; removing an absent one is not an error.
func (b *Bolt) DeleteWorkload(ctx context.Context, id string) (err error) {
	defer func() { err = b.m.observe("delete_workload", err) }()
	if err := ctx.Err(); err != nil {
		return err
	}
	found := false
	err = b.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketWorkloads)
		if bk.Get([]byte(id)) == nil {
			return nil
		}
		found = true
		return bk.Delete([]byte(id))
	})
	if err == nil && found {
		b.workloads.notify()
	}
	return err
}

// Workloads returns the live workloads (not yet expired), sorted by ID.
func (b *Bolt) Workloads(ctx context.Context) (ws []state.Workload, err error) {
	defer func() { err = b.m.observe("workloads", err) }()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	err = b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWorkloads).ForEach(func(_, v []byte) error {
			sw, err := decodeWorkload(v)
			if err != nil {
				return err
			}
			if now.Before(sw.Workload.Expires) {
				ws = append(ws, sw.Workload)
			}
			return nil
		})
	})
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	return ws, err
}

// WatchWorkloads signals (coalescing) whenever a workload is put, changes health, is deleted or
// expires, until ctx ends or the store closes.
func (b *Bolt) WatchWorkloads(ctx context.Context) <-chan struct{} {
	in, stop := b.workloads.subscribe()
	out, run := forwardSignals(ctx, b.bg.done, in, stop)
	if !b.bg.spawn(run) {
		stop()
		close(out)
	}
	return out
}

// sweepLoop deletes expired workloads every SweepInterval until the store closes.
func (b *Bolt) sweepLoop() {
	t := time.NewTicker(b.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-b.bg.done:
			return
		case <-t.C:
		}
		n, err := b.sweep(time.Now())
		if err != nil {
			b.log.Warn("store: cannot delete expired workloads", "file", b.path, "error", err)
			continue
		}
		if n > 0 {
			b.workloads.notify()
		}
	}
}

// sweep deletes the workloads expired at now and returns how many.
func (b *Bolt) sweep(now time.Time) (n int, err error) {
	var expired [][]byte
	if err := b.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWorkloads).ForEach(func(k, v []byte) error {
			sw, err := decodeWorkload(v)
			if err != nil || !now.Before(sw.Workload.Expires) {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
	}); err != nil || len(expired) == 0 {
		return 0, err
	}
	err = b.update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketWorkloads)
		for _, k := range expired {
			v := bk.Get(k)
			if v == nil {
				continue
			}
			// Renewed between the scan and this transaction: keep it.
			if sw, err := decodeWorkload(v); err == nil && now.Before(sw.Workload.Expires) {
				continue
			}
			if err := bk.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
