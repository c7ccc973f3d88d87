package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/meshgate/meshgate/internal/wait"
)

// Current returns the newest config revision, or ErrNotFound when none was ever stored.
func (e *Etcd) Current(ctx context.Context) (rev Revision, err error) {
	defer func() { err = e.m.observe("current", err) }()
	rev, _, err = e.current(ctx)
	return rev, err
}

// current reads the newest revision and the etcd revision it was read at.
func (e *Etcd) current(ctx context.Context) (Revision, int64, error) {
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.key(keyRevisions), clientv3.WithPrefix(),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(1))
	if err != nil {
		return Revision{}, 0, e.fail(ctx, "current", err)
	}
	if len(resp.Kvs) == 0 {
		return Revision{}, resp.Header.Revision, fmt.Errorf("%w: no config stored", ErrNotFound)
	}
	rev, err := decodeRevision(resp.Kvs[0].Value)
	return rev, resp.Header.Revision, err
}

// Apply stores rev as version expected+1 in one transaction that compares the current version,
// stores the revision, moves the current pointer and prunes revisions beyond the history limit.
func (e *Etcd) Apply(ctx context.Context, expected uint64, rev Revision) (out Revision, err error) {
	defer func() { err = e.m.observe("apply", err) }()
	out = stamp(rev, expected+1, time.Now())
	data, err := json.Marshal(out)
	if err != nil {
		return Revision{}, fmt.Errorf("%w: encode revision: %w", errBadInput, err)
	}
	current := e.key(keyCurrent)
	cmp := clientv3.Compare(clientv3.Value(current), "=", fmt.Sprintf(revisionKeyForm, expected))
	if expected == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(current), "=", 0)
	}
	ops := []clientv3.Op{
		clientv3.OpPut(e.revisionKey(out.Version), string(data)),
		clientv3.OpPut(current, fmt.Sprintf(revisionKeyForm, out.Version)),
	}
	if keep := oldestKept(out.Version, e.opts.HistoryLimit); keep > 1 {
		ops = append(ops, clientv3.OpDelete(e.key(keyRevisions), clientv3.WithRange(e.revisionKey(keep))))
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Txn(rctx).If(cmp).Then(ops...).Else(clientv3.OpGet(current)).Commit()
	if err != nil {
		return Revision{}, e.fail(ctx, "apply", err)
	}
	if !resp.Succeeded {
		var cur uint64
		if r := resp.Responses[0].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
			cur, _ = strconv.ParseUint(string(r.Kvs[0].Value), 10, 64)
		}
		return Revision{}, fmt.Errorf("%w (based on version %d, current is %d)", ErrConflict, expected, cur)
	}
	return out, nil
}

// Get returns one revision, or ErrNotFound.
func (e *Etcd) Get(ctx context.Context, version uint64) (rev Revision, err error) {
	defer func() { err = e.m.observe("get", err) }()
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.revisionKey(version))
	if err != nil {
		return Revision{}, e.fail(ctx, "get", err)
	}
	if len(resp.Kvs) == 0 {
		return Revision{}, fmt.Errorf("%w: config version %d", ErrNotFound, version)
	}
	return decodeRevision(resp.Kvs[0].Value)
}

// History returns up to limit revisions, newest first; limit <= 0 returns every kept one.
func (e *Etcd) History(ctx context.Context, limit int) (revs []Revision, err error) {
	defer func() { err = e.m.observe("history", err) }()
	opts := []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.key(keyRevisions), opts...)
	if err != nil {
		return nil, e.fail(ctx, "history", err)
	}
	for _, kv := range resp.Kvs {
		rev, err := decodeRevision(kv.Value)
		if err != nil {
			return nil, err
		}
		revs = append(revs, rev)
	}
	return revs, nil
}

// WatchConfig sends the current revision, then every newer one stored by any replica, until ctx
// ends or the store closes. It watches etcd; when the watch breaks (etcd restarted, history
// compacted, leader lost) it re-reads the current revision and watches again, so the newest
// revision is always delivered.
func (e *Etcd) WatchConfig(ctx context.Context) <-chan Revision {
	out := make(chan Revision)
	if !e.bg.spawn(func() { e.watchConfig(ctx, out) }) {
		close(out)
	}
	return out
}

// watchConfig is WatchConfig's loop.
func (e *Etcd) watchConfig(ctx context.Context, out chan<- Revision) {
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()
	var sent uint64
	var pending *Revision
	offer := func(r Revision) {
		if r.Version > sent && (pending == nil || r.Version > pending.Version) {
			pending = &r
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && !wait.Sleep(ctx, retryDelay(attempt)) {
			return
		}
		rev, at, err := e.current(ctx)
		switch {
		case err == nil:
			offer(rev)
		case isNotFound(err):
		default:
			if ctx.Err() == nil {
				e.log.Warn("store: etcd config watch: cannot read the current revision", "error", err)
			}
			continue
		}
		attempt = 0
		if !e.followConfig(ctx, at, out, &sent, &pending, offer) {
			return
		}
		attempt = 1
	}
}

// followConfig watches the revision keys from etcd revision at+1, delivering the newest one,
// until the watch breaks (true: read again) or ctx ends (false).
func (e *Etcd) followConfig(ctx context.Context, at int64, out chan<- Revision, sent *uint64, pending **Revision, offer func(Revision)) bool {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := e.cli.Watch(wctx, e.key(keyRevisions), clientv3.WithPrefix(), clientv3.WithRev(at+1), clientv3.WithFilterDelete())
	for {
		var send chan<- Revision
		var next Revision
		if *pending != nil {
			send, next = out, **pending
		}
		select {
		case <-ctx.Done():
			return false
		case send <- next:
			*sent, *pending = next.Version, nil
		case resp, ok := <-wch:
			if !ok || resp.Canceled || resp.Err() != nil {
				if ctx.Err() == nil {
					e.log.Info("store: etcd config watch broke; reading the current revision again", "error", resp.Err())
				}
				return ctx.Err() == nil
			}
			for _, ev := range resp.Events {
				if ev.Type != clientv3.EventTypePut {
					continue
				}
				if rev, err := decodeRevision(ev.Kv.Value); err == nil {
					offer(rev)
				}
			}
		}
	}
}

// retryDelay is the pause before the attempt-th retry of a broken watch: 100ms doubling to 2s.
func retryDelay(attempt int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < attempt && d < 2*time.Second; i++ {
		d *= 2
	}
	return min(d, 2*time.Second)
}
