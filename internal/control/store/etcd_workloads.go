package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/wait"
)

// leaseSeconds is the etcd lease TTL for a workload TTL: whole seconds, rounded up, at least 1.
// etcd itself may raise it to its minimum lease TTL.
func leaseSeconds(ttl time.Duration) int64 {
	return max(1, int64((ttl+time.Second-1)/time.Second))
}

// PutWorkload stores w on a new lease of ttl (replacing one with the same ID, whose old lease is
// revoked). It sets Expires, and Registered when zero.
func (e *Etcd) PutWorkload(ctx context.Context, w state.Workload, ttl time.Duration) (err error) {
	defer func() { err = e.m.observe("put_workload", err) }()
	data, err := prepareWorkload(w, ttl)
	if err != nil {
		return err
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	key := e.key(keyWorkloads + w.ID)
	lease, err := e.cli.Grant(rctx, leaseSeconds(ttl))
	if err != nil {
		return e.fail(ctx, "put workload", err)
	}
	resp, err := e.cli.Put(rctx, key, string(data), clientv3.WithLease(lease.ID), clientv3.WithPrevKV())
	if err != nil {
		e.revoke(lease.ID)
		return e.fail(ctx, "put workload", err)
	}
	if prev := resp.PrevKv; prev != nil && prev.Lease != 0 && clientv3.LeaseID(prev.Lease) != lease.ID {
		e.revoke(clientv3.LeaseID(prev.Lease))
	}
	return nil
}

// revoke revokes a lease no key needs any more, best effort: an unrevoked lease expires anyway.
func (e *Etcd) revoke(id clientv3.LeaseID) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.RequestTimeout)
	defer cancel()
	if _, err := e.cli.Revoke(ctx, id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		e.log.Debug("store: etcd: cannot revoke a lease; it will expire", "lease", int64(id), "error", err)
	}
}

// RenewWorkload keeps the workload's lease alive once (a new lease when ttl changed) and re-puts
// the workload with its health (unless health is "") and new expiry; ErrNotFound when the lease
// has expired or the workload was never registered or was deleted.
func (e *Etcd) RenewWorkload(ctx context.Context, id, health string, ttl time.Duration) (w state.Workload, err error) {
	defer func() { err = e.m.observe("renew_workload", err) }()
	if err := checkTTL(ttl); err != nil {
		return state.Workload{}, fmt.Errorf("%w: %w", errBadInput, err)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	key := e.key(keyWorkloads + id)
	for range 3 { // a concurrent put or renew of the same workload makes the transaction retry
		resp, err := e.cli.Get(rctx, key)
		if err != nil {
			return state.Workload{}, e.fail(ctx, "renew workload", err)
		}
		if len(resp.Kvs) == 0 {
			return state.Workload{}, fmt.Errorf("%w: workload %q", ErrNotFound, id)
		}
		kv := resp.Kvs[0]
		sw, err := decodeWorkload(kv.Value)
		if err != nil {
			return state.Workload{}, err
		}
		old := clientv3.LeaseID(kv.Lease)
		lease := old
		if leaseSeconds(sw.TTL) == leaseSeconds(ttl) && old != clientv3.NoLease {
			if _, err := e.cli.KeepAliveOnce(rctx, old); errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return state.Workload{}, fmt.Errorf("%w: workload %q expired", ErrNotFound, id)
			} else if err != nil {
				return state.Workload{}, e.fail(ctx, "renew workload", err)
			}
		} else {
			g, err := e.cli.Grant(rctx, leaseSeconds(ttl))
			if err != nil {
				return state.Workload{}, e.fail(ctx, "renew workload", err)
			}
			lease = g.ID
		}
		if health != "" {
			sw.Workload.Health = health
		}
		sw.Workload.Expires = time.Now().Add(ttl).UTC()
		data, err := encodeWorkload(sw.Workload, ttl)
		if err != nil {
			return state.Workload{}, err
		}
		txn, err := e.cli.Txn(rctx).
			If(clientv3.Compare(clientv3.LeaseValue(key), "=", old), clientv3.Compare(clientv3.Version(key), ">", 0)).
			Then(clientv3.OpPut(key, string(data), clientv3.WithLease(lease))).
			Commit()
		if err != nil {
			return state.Workload{}, e.fail(ctx, "renew workload", err)
		}
		if txn.Succeeded {
			if lease != old {
				e.revoke(old)
			}
			return sw.Workload, nil
		}
		if lease != old {
			e.revoke(lease)
		}
	}
	return state.Workload{}, fmt.Errorf("store: etcd renew workload %q: changed concurrently, try again", id)
}

// DeleteWorkload removes a workload and revokes its lease; removing an absent one is not an error.
func (e *Etcd) DeleteWorkload(ctx context.Context, id string) (err error) {
	defer func() { err = e.m.observe("delete_workload", err) }()
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Delete(rctx, e.key(keyWorkloads+id), clientv3.WithPrevKV())
	if err != nil {
		return e.fail(ctx, "delete workload", err)
	}
	for _, kv := range resp.PrevKvs {
		if kv.Lease != 0 {
			e.revoke(clientv3.LeaseID(kv.Lease))
		}
	}
	return nil
}

// Workloads returns the live workloads, sorted by ID. Expired leases have deleted theirs.
func (e *Etcd) Workloads(ctx context.Context) (ws []state.Workload, err error) {
	defer func() { err = e.m.observe("workloads", err) }()
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.key(keyWorkloads), clientv3.WithPrefix())
	if err != nil {
		return nil, e.fail(ctx, "workloads", err)
	}
	for _, kv := range resp.Kvs {
		sw, err := decodeWorkload(kv.Value)
		if err != nil {
			e.log.Warn("store: etcd: skipping an undecodable workload", "key", string(kv.Key), "error", err)
			continue
		}
		ws = append(ws, sw.Workload)
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	return ws, nil
}

// WatchWorkloads signals (coalescing) whenever a workload is put, changes, is deleted or
// expires, from any replica, until ctx ends or the store closes. A heartbeat that changes only
// the expiry does not signal. After a broken watch it signals once, since changes may have been
// missed.
func (e *Etcd) WatchWorkloads(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	if !e.bg.spawn(func() { e.watchWorkloads(ctx, out) }) {
		close(out)
	}
	return out
}

// watchWorkloads is WatchWorkloads' loop.
func (e *Etcd) watchWorkloads(ctx context.Context, out chan struct{}) {
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	prefix := e.key(keyWorkloads)
	broken := false
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !wait.Sleep(ctx, retryDelay(attempt)) {
			return
		}
		rctx, rcancel := e.request(ctx)
		resp, err := e.cli.Get(rctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		rcancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("store: etcd workload watch: cannot read", "error", e.fail(ctx, "workloads", err))
			broken = true // changes may go unseen until the watch starts
			continue
		}
		if broken {
			wake(out)
			broken = false
		}
		attempt = 0
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := e.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1), clientv3.WithPrevKV())
		for r := range wch {
			if r.Canceled || r.Err() != nil {
				break
			}
			for _, ev := range r.Events {
				if !(ev.Type == clientv3.EventTypePut && ev.PrevKv != nil && sameButExpiry(ev.PrevKv.Value, ev.Kv.Value)) {
					wake(out)
					break
				}
			}
		}
		wcancel()
		if ctx.Err() != nil {
			return
		}
		broken = true
		attempt = 1
	}
}

// sameButExpiry reports whether two stored workloads differ at most in their expiry.
func sameButExpiry(a, b []byte) bool {
	wa, err := decodeWorkload(a)
	if err != nil {
		return false
	}
	wb, err := decodeWorkload(b)
	if err != nil {
		return false
	}
	wa.Workload.Expires, wb.Workload.Expires = time.Time{}, time.Time{}
	ea, _ := encodeWorkload(wa.Workload, wa.TTL)
	eb, _ := encodeWorkload(wb.Workload, wb.TTL)
	return string(ea) == string(eb)
}
