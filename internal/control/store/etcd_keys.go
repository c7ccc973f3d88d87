package store

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// GetKey returns a named value, or ErrNotFound.
func (e *Etcd) GetKey(ctx context.Context, key string) (value []byte, err error) {
	defer func() { err = e.m.observe("get_key", err) }()
	rctx, cancel := e.request(ctx)
	defer cancel()
	resp, err := e.cli.Get(rctx, e.key(keyValues+key))
	if err != nil {
		return nil, e.fail(ctx, "get key", err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return resp.Kvs[0].Value, nil
}

// PutKey stores a named value; with ifAbsent it stores only when the key is unset (a transaction
// on its create revision) and returns ErrExists otherwise.
func (e *Etcd) PutKey(ctx context.Context, key string, value []byte, ifAbsent bool) (err error) {
	defer func() { err = e.m.observe("put_key", err) }()
	if key == "" {
		return fmt.Errorf("%w: empty key", errBadInput)
	}
	rctx, cancel := e.request(ctx)
	defer cancel()
	k := e.key(keyValues + key)
	if !ifAbsent {
		if _, err := e.cli.Put(rctx, k, string(value)); err != nil {
			return e.fail(ctx, "put key", err)
		}
		return nil
	}
	resp, err := e.cli.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(value))).Commit()
	if err != nil {
		return e.fail(ctx, "put key", err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%w: %q", ErrExists, key)
	}
	return nil
}
