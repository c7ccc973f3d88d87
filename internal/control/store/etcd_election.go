package store

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Campaign joins the election under the prefix with a session lease of SessionTTL and blocks
// until this replica leads or ctx ends. The returned channel closes when the leadership ends:
// the session's lease is lost (etcd unreachable for longer than the TTL, the lease revoked),
// ctx ends or the store closes; in the last two cases the replica resigns so another takes over
// at once.
func (e *Etcd) Campaign(ctx context.Context, id string) (lost <-chan struct{}, err error) {
	defer func() { err = e.m.observe("campaign", err) }()
	ttl := int(leaseSeconds(e.opts.SessionTTL))
	rctx, cancel := e.request(ctx)
	grant, err := e.cli.Grant(rctx, int64(ttl))
	cancel()
	if err != nil {
		return nil, e.fail(ctx, "campaign", err)
	}
	sess, err := concurrency.NewSession(e.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(ttl),
		concurrency.WithContext(e.ctx))
	if err != nil {
		e.revoke(grant.ID)
		return nil, e.fail(ctx, "campaign", err)
	}
	end := func() {
		sess.Orphan()
		e.revoke(sess.Lease())
	}
	// Campaigning ends with ctx, and with the session: a lost lease cannot lead.
	cctx, ccancel := context.WithCancel(ctx)
	stop := context.AfterFunc(sess.Ctx(), ccancel)
	err = concurrency.NewElection(sess, strings.TrimSuffix(e.key(keyElection), "/")).Campaign(cctx, id)
	stop()
	ccancel()
	if err != nil {
		end()
		if ctx.Err() == nil && sess.Ctx().Err() != nil {
			return nil, fmt.Errorf("store: etcd campaign: session lease lost: %w", ErrUnavailable)
		}
		return nil, e.fail(ctx, "campaign", err)
	}
	ch := make(chan struct{})
	if !e.bg.spawn(func() {
		defer close(ch)
		select {
		case <-ctx.Done():
		case <-sess.Done():
		}
		end() // resign: when the lease was lost this revokes nothing
	}) {
		end()
		close(ch)
	}
	return ch, nil
}

// Leader returns the id of the current leader (the oldest campaigner under the election prefix),
// or "" when none.
func (e *Etcd) Leader(ctx context.Context) (id string, err error) {
	defer func() { err = e.m.observe("leader", err) }()
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.key(keyElection), clientv3.WithFirstCreate()...)
	if err != nil {
		return "", e.fail(ctx, "leader", err)
	}
	if len(resp.Kvs) == 0 {
		return "", nil
	}
	return string(resp.Kvs[0].Value), nil
}
