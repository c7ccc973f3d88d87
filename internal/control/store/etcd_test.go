package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/testetcd"
)

// prefixes numbers the key prefixes of tests sharing one etcd.
var prefixes atomic.Int64

// openEtcd opens a store on srv and closes it when the test ends.
func openEtcd(t *testing.T, srv *testetcd.Server, opts EtcdOptions) *Etcd {
	t.Helper()
	opts.Endpoints = srv.Endpoints
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := OpenEtcd(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return e
}

// freshPrefix returns a key prefix no other test uses.
func freshPrefix() string { return fmt.Sprintf("/test-%d/", prefixes.Add(1)) }

func TestEtcdContract(t *testing.T) {
	srv := testetcd.Start(t)
	runContract(t, func(t *testing.T, o contractOpts) []Store {
		prefix := freshPrefix()
		var rs []Store
		for range max(o.n, 1) {
			rs = append(rs, openEtcd(t, srv, EtcdOptions{Prefix: prefix, HistoryLimit: o.historyLimit, SessionTTL: 2 * time.Second}))
		}
		return rs
	})
}

func TestEtcdOpenUnreachable(t *testing.T) {
	srv := testetcd.Start(t)
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := OpenEtcd(ctx, EtcdOptions{Endpoints: srv.Endpoints, DialTimeout: 300 * time.Millisecond, RequestTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OpenEtcd on a stopped etcd = %v, want ErrUnavailable", err)
	}
}

func TestEtcdLeaderElection(t *testing.T) {
	srv := testetcd.Start(t)
	prefix := freshPrefix()
	a := openEtcd(t, srv, EtcdOptions{Prefix: prefix, SessionTTL: 2 * time.Second})
	b := openEtcd(t, srv, EtcdOptions{Prefix: prefix, SessionTTL: 2 * time.Second})
	ctx := testCtx(t)
	if l, err := a.Leader(ctx); err != nil || l != "" {
		t.Fatalf("Leader before any campaign = %q, %v", l, err)
	}
	lostA, err := a.Campaign(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		lost <-chan struct{}
		err  error
	}
	bLeads := make(chan result, 1)
	go func() {
		lost, err := b.Campaign(ctx, "b")
		bLeads <- result{lost, err}
	}()
	for _, s := range []*Etcd{a, b} {
		if l, err := s.Leader(ctx); err != nil || l != "a" {
			t.Fatalf("Leader = %q, %v; want a", l, err)
		}
	}
	select {
	case <-bLeads:
		t.Fatal("b leads while a does")
	case <-time.After(300 * time.Millisecond):
	}
	// a closes: it resigns, and b takes over (at the latest when a's session TTL runs out).
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lostA:
	case <-time.After(testWait):
		t.Fatal("a's leadership channel not closed by Close")
	}
	var r result
	select {
	case r = <-bLeads:
	case <-time.After(2*time.Second + testWait):
		t.Fatal("b did not take over")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if l, err := b.Leader(ctx); err != nil || l != "b" {
		t.Fatalf("Leader after takeover = %q, %v; want b", l, err)
	}

	// b's session lease is revoked behind its back: its leadership channel closes.
	resp, err := b.cli.Get(ctx, b.key(keyElection), clientPrefix()...)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("election keys = %v, %v", resp, err)
	}
	if _, err := b.cli.Revoke(ctx, leaseOf(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.lost:
	case <-time.After(2*time.Second + testWait):
		t.Fatal("b's leadership channel not closed after its lease was revoked")
	}
	if l, err := b.Leader(ctx); err != nil || l != "" {
		t.Fatalf("Leader after the lease was lost = %q, %v; want none", l, err)
	}
}

func TestEtcdTakeoverAfterLeaderCrash(t *testing.T) {
	srv := testetcd.Start(t)
	prefix := freshPrefix()
	b := openEtcd(t, srv, EtcdOptions{Prefix: prefix, SessionTTL: 2 * time.Second})
	ctx := testCtx(t)
	// A leader that stops keeping its session alive without resigning, as a crashed process.
	sess, err := concurrency.NewSession(b.cli, concurrency.WithTTL(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := concurrency.NewElection(sess, strings.TrimSuffix(b.key(keyElection), "/")).Campaign(ctx, "crashed"); err != nil {
		t.Fatal(err)
	}
	if l, err := b.Leader(ctx); err != nil || l != "crashed" {
		t.Fatalf("Leader = %q, %v", l, err)
	}
	sess.Orphan()
	start := time.Now()
	lost, err := b.Campaign(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took over %s after the leader stopped", time.Since(start).Round(10*time.Millisecond))
	if l, err := b.Leader(ctx); err != nil || l != "b" {
		t.Fatalf("Leader after takeover = %q, %v", l, err)
	}
	select {
	case <-lost:
		t.Fatal("leadership lost at once")
	default:
	}
}

func TestEtcdUnavailableAndRecovery(t *testing.T) {
	srv := testetcd.Start(t)
	reg := prometheus.NewRegistry()
	const timeout = 500 * time.Millisecond
	prefix := freshPrefix()
	e := openEtcd(t, srv, EtcdOptions{Prefix: prefix, RequestTimeout: timeout, DialTimeout: timeout, Registerer: reg})
	ctx := testCtx(t)
	mustApply(t, e, 0, "a: 1\n")
	if err := e.PutWorkload(ctx, workload("w1", state.HealthHealthy), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	revs := e.WatchConfig(ctx)
	if r := recvRevision(t, revs); r.Version != 1 {
		t.Fatalf("first watched version %d", r.Version)
	}
	sig := e.WatchWorkloads(ctx)

	srv.Stop()
	for _, tc := range []struct {
		desc string
		op   func() error
	}{
		{"current", func() error { _, err := e.Current(ctx); return err }},
		{"apply", func() error { _, err := e.Apply(ctx, 1, Revision{YAML: []byte("a: 2\n")}); return err }},
		{"history", func() error { _, err := e.History(ctx, 5); return err }},
		{"put workload", func() error { return e.PutWorkload(ctx, workload("w2", state.HealthHealthy), time.Minute) }},
		{"renew workload", func() error {
			_, err := e.RenewWorkload(ctx, "w1", state.HealthHealthy, 30*time.Second)
			return err
		}},
		{"workloads", func() error { _, err := e.Workloads(ctx); return err }},
		{"put key", func() error { return e.PutKey(ctx, "k", []byte("v"), true) }},
		{"get key", func() error { _, err := e.GetKey(ctx, "k"); return err }},
		{"leader", func() error { _, err := e.Leader(ctx); return err }},
	} {
		start := time.Now()
		err := tc.op()
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s with etcd stopped = %v, want ErrUnavailable", tc.desc, err)
		}
		// Bounded by RequestTimeout (a renewal makes up to two requests); generous for slow machines.
		if d := time.Since(start); d > 2*timeout+5*time.Second {
			t.Errorf("%s took %s to fail", tc.desc, d)
		}
	}
	if up := metricValue(t, e.m.up); up != 0 {
		t.Errorf("up with etcd stopped = %v, want 0", up)
	}

	srv.Restart()
	var cur Revision
	eventually(t, "apply after the restart", func() bool {
		var err error
		cur, err = e.Apply(ctx, 1, Revision{YAML: []byte("a: 2\n")})
		return err == nil || errors.Is(err, ErrConflict)
	})
	if up := metricValue(t, e.m.up); up != 1 {
		t.Errorf("up after recovery = %v, want 1", up)
	}
	if r := recvRevision(t, revs); r.Version != 2 || string(r.YAML) != "a: 2\n" {
		t.Fatalf("watch after the restart got %+v (applied %+v), want version 2", r, cur)
	}
	drain(sig)
	if err := e.PutWorkload(ctx, workload("w3", state.HealthHealthy), time.Minute); err != nil {
		t.Fatal(err)
	}
	recvSignal(t, sig, "workload watch after the restart")
	// Once more: this signal can only come from the resumed watch.
	time.Sleep(100 * time.Millisecond)
	drain(sig)
	if err := e.PutWorkload(ctx, workload("w4", state.HealthHealthy), time.Minute); err != nil {
		t.Fatal(err)
	}
	recvSignal(t, sig, "workload watch after the restart")
	ws, err := e.Workloads(ctx)
	if err != nil || len(ws) != 3 || ws[0].ID != "w1" || ws[1].ID != "w3" {
		t.Fatalf("Workloads after the restart = %+v, %v", ws, err)
	}
}

func TestEtcdWatchAfterCompaction(t *testing.T) {
	srv := testetcd.Start(t)
	prefix := freshPrefix()
	a := openEtcd(t, srv, EtcdOptions{Prefix: prefix})
	b := openEtcd(t, srv, EtcdOptions{Prefix: prefix})
	ctx := testCtx(t)
	for v := range uint64(5) {
		mustApply(t, a, v, fmt.Sprintf("a: %d\n", v+1))
	}
	resp, err := a.cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.cli.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	// A watch that resumes from a compacted etcd revision breaks and asks to read again.
	out := make(chan Revision, 1)
	var sent uint64
	var pending *Revision
	again := b.followConfig(ctx, 1, out, &sent, &pending, func(Revision) {})
	if !again {
		t.Fatal("followConfig from a compacted revision did not ask to read again")
	}
	// The whole watch still delivers the newest revision, and later ones.
	w := b.WatchConfig(ctx)
	if r := recvRevision(t, w); r.Version != 5 {
		t.Fatalf("first %d, want 5", r.Version)
	}
	mustApply(t, a, 5, "a: 6\n")
	if r := recvRevision(t, w); r.Version != 6 {
		t.Fatalf("next %d, want 6", r.Version)
	}
}

func clientPrefix() []clientv3.OpOption { return []clientv3.OpOption{clientv3.WithPrefix()} }

func leaseOf(id int64) clientv3.LeaseID { return clientv3.LeaseID(id) }
