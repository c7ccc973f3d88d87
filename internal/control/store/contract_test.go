package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/control/state"
)

// replicas opens stores that share one state: n handles on a fresh, empty store. For Bolt they
// are the same store; for Etcd they are separate clients of one etcd under one prefix.
type replicas func(t *testing.T, o contractOpts) []Store

// contractOpts are what a contract case needs of its stores.
type contractOpts struct {
	n            int // how many replicas; 0 means 1
	historyLimit int // 0: the default
}

// contractCase is one behaviour every Store must have.
type contractCase struct {
	desc string
	run  func(t *testing.T, open replicas)
}

// runContract runs every contract case against one implementation.
func runContract(t *testing.T, open replicas) {
	for _, c := range contractCases {
		t.Run(c.desc, func(t *testing.T) { c.run(t, open) })
	}
}

// testWait bounds every blocking step of the contract tests.
const testWait = 15 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func one(t *testing.T, open replicas, o contractOpts) Store {
	o.n = 1
	return open(t, o)[0]
}

func mustApply(t *testing.T, s Store, expected uint64, yaml string) Revision {
	t.Helper()
	rev, err := s.Apply(testCtx(t), expected, Revision{YAML: []byte(yaml), Source: "test.yaml", Actor: "tester", Comment: "apply"})
	if err != nil {
		t.Fatalf("Apply(expected %d): %v", expected, err)
	}
	return rev
}

// recvRevision waits for the next revision on ch.
func recvRevision(t *testing.T, ch <-chan Revision) Revision {
	t.Helper()
	select {
	case rev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		return rev
	case <-time.After(testWait):
		t.Fatal("no revision within the wait")
	}
	return Revision{}
}

// recvSignal waits for a signal on ch.
func recvSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: watch closed", what)
		}
	case <-time.After(testWait):
		t.Fatalf("%s: no signal within the wait", what)
	}
}

// drain empties a coalescing signal channel.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func workload(id, health string) state.Workload {
	return state.Workload{
		ID: id, Service: "api", Namespace: "default", Version: "v1",
		Labels:    map[string]string{"zone": "a"},
		Addresses: []string{"10.0.0.1"},
		Ports:     []state.Port{{Name: "http", Port: 8080, Protocol: state.PortHTTP1}},
		Health:    health, Identity: "spiffe://mesh.test/ns/default/sa/api",
	}
}

// eventually polls cond every 50ms until it holds or the wait ends.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, testWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var contractCases = []contractCase{
	{"empty store has no revision", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{})
		ctx := testCtx(t)
		if _, err := s.Current(ctx); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Current = %v, want ErrNotFound", err)
		}
		if _, err := s.Get(ctx, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(1) = %v, want ErrNotFound", err)
		}
		if h, err := s.History(ctx, 10); err != nil || len(h) != 0 {
			t.Fatalf("History = %v, %v; want none", h, err)
		}
	}},
	{"apply stamps and stores revisions", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{})
		ctx := testCtx(t)
		before := time.Now().Add(-time.Second)
		r1 := mustApply(t, s, 0, "a: 1\n")
		if r1.Version != 1 || r1.Source != "test.yaml" || r1.Actor != "tester" || r1.Comment != "apply" {
			t.Fatalf("first revision = %+v", r1)
		}
		// sha256("a: 1\n")
		if len(r1.Digest) != 64 || r1.Time.Before(before) {
			t.Fatalf("digest %q time %v", r1.Digest, r1.Time)
		}
		r2 := mustApply(t, s, 1, "a: 2\n")
		if r2.Version != 2 || r2.Digest == r1.Digest {
			t.Fatalf("second revision = %+v", r2)
		}
		cur, err := s.Current(ctx)
		if err != nil || cur.Version != 2 || string(cur.YAML) != "a: 2\n" || cur.Digest != r2.Digest {
			t.Fatalf("Current = %+v, %v", cur, err)
		}
		got, err := s.Get(ctx, 1)
		if err != nil || string(got.YAML) != "a: 1\n" || !got.Time.Equal(r1.Time) {
			t.Fatalf("Get(1) = %+v, %v", got, err)
		}
		if _, err := s.Get(ctx, 3); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(3) = %v, want ErrNotFound", err)
		}
	}},
	{"apply refuses a stale base", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx := testCtx(t)
		mustApply(t, rs[0], 0, "a: 1\n")
		for _, tc := range []struct {
			desc     string
			expected uint64
		}{
			{"none assumed", 0},
			{"future", 5},
		} {
			if _, err := rs[1].Apply(ctx, tc.expected, Revision{YAML: []byte("b: 1\n")}); !errors.Is(err, ErrConflict) {
				t.Fatalf("%s: Apply = %v, want ErrConflict", tc.desc, err)
			}
		}
		cur, err := rs[1].Current(ctx)
		if err != nil || cur.Version != 1 || string(cur.YAML) != "a: 1\n" {
			t.Fatalf("Current after conflicts = %+v, %v", cur, err)
		}
	}},
	{"concurrent applies: one wins per version", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx := testCtx(t)
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = rs[i%2].Apply(ctx, 0, Revision{YAML: fmt.Appendf(nil, "n: %d\n", i)})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, ErrConflict):
				t.Fatalf("Apply = %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d applies on version 0 won, want 1", won)
		}
	}},
	{"history is newest first and pruned", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{historyLimit: 3})
		ctx := testCtx(t)
		for v := range uint64(5) {
			mustApply(t, s, v, fmt.Sprintf("v: %d\n", v+1))
		}
		for _, tc := range []struct {
			limit int
			want  []uint64
		}{
			{0, []uint64{5, 4, 3}},
			{2, []uint64{5, 4}},
			{10, []uint64{5, 4, 3}},
		} {
			h, err := s.History(ctx, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, r := range h {
				got = append(got, r.Version)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("History(%d) = %v, want %v", tc.limit, got, tc.want)
			}
		}
		for _, v := range []uint64{1, 2} {
			if _, err := s.Get(ctx, v); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(%d) after pruning = %v, want ErrNotFound", v, err)
			}
		}
		if r, err := s.Get(ctx, 3); err != nil || string(r.YAML) != "v: 3\n" {
			t.Errorf("Get(3) = %+v, %v", r, err)
		}
	}},
	{"watch config from another replica", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx, cancel := context.WithCancel(testCtx(t))
		empty := rs[1].WatchConfig(ctx)
		mustApply(t, rs[0], 0, "a: 1\n")
		if r := recvRevision(t, empty); r.Version != 1 {
			t.Fatalf("watch started on an empty store got %d first, want 1", r.Version)
		}
		w := rs[1].WatchConfig(ctx)
		if r := recvRevision(t, w); r.Version != 1 || string(r.YAML) != "a: 1\n" {
			t.Fatalf("first value = %+v, want the current revision", r)
		}
		mustApply(t, rs[0], 1, "a: 2\n")
		if r := recvRevision(t, w); r.Version != 2 || string(r.YAML) != "a: 2\n" {
			t.Fatalf("next value = %+v, want version 2", r)
		}
		if r := recvRevision(t, empty); r.Version != 2 {
			t.Fatalf("first watch got %d, want 2", r.Version)
		}
		cancel()
		for _, ch := range []<-chan Revision{w, empty} {
			select {
			case <-ch: // a value in flight, or the close
			case <-time.After(testWait):
				t.Fatal("watch not closed after its context ended")
			}
			eventually(t, "watch closed", func() bool {
				select {
				case _, ok := <-ch:
					return !ok
				default:
					return false
				}
			})
		}
	}},
	{"slow watcher gets the newest", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		w := rs[1].WatchConfig(testCtx(t))
		for v := range uint64(10) {
			mustApply(t, rs[0], v, fmt.Sprintf("v: %d\n", v+1))
		}
		var last uint64
		for last < 10 {
			r := recvRevision(t, w)
			if r.Version <= last {
				t.Fatalf("got version %d after %d", r.Version, last)
			}
			last = r.Version
		}
	}},
	{"workloads put, renew, delete, watch", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx := testCtx(t)
		sig := rs[1].WatchWorkloads(ctx)
		ttl := 30 * time.Second
		before := time.Now().Add(-time.Second)
		for _, id := range []string{"w2", "w1"} {
			if err := rs[0].PutWorkload(ctx, workload(id, state.HealthHealthy), ttl); err != nil {
				t.Fatal(err)
			}
		}
		recvSignal(t, sig, "put")
		ws, err := rs[1].Workloads(ctx)
		if err != nil || len(ws) != 2 || ws[0].ID != "w1" || ws[1].ID != "w2" {
			t.Fatalf("Workloads = %+v, %v", ws, err)
		}
		if w := ws[0]; w.Service != "api" || w.Ports[0].Port != 8080 || w.Labels["zone"] != "a" ||
			w.Registered.Before(before) || w.Expires.Before(before.Add(ttl)) {
			t.Fatalf("stored workload = %+v", w)
		}
		drain(sig)
		w, err := rs[1].RenewWorkload(ctx, "w1", state.HealthDraining, ttl)
		if err != nil || w.Health != state.HealthDraining || w.ID != "w1" {
			t.Fatalf("Renew = %+v, %v", w, err)
		}
		recvSignal(t, sig, "health change")
		ws, _ = rs[0].Workloads(ctx)
		if ws[0].Health != state.HealthDraining {
			t.Fatalf("health after renew = %q", ws[0].Health)
		}
		if _, err := rs[0].RenewWorkload(ctx, "nope", state.HealthHealthy, ttl); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Renew(unknown) = %v, want ErrNotFound", err)
		}
		// Replacing keeps one entry.
		if err := rs[0].PutWorkload(ctx, workload("w2", state.HealthUnhealthy), ttl); err != nil {
			t.Fatal(err)
		}
		drain(sig)
		if err := rs[0].DeleteWorkload(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		recvSignal(t, sig, "delete")
		if err := rs[0].DeleteWorkload(ctx, "w1"); err != nil {
			t.Fatalf("deleting an absent workload: %v", err)
		}
		ws, err = rs[1].Workloads(ctx)
		if err != nil || len(ws) != 1 || ws[0].ID != "w2" || ws[0].Health != state.HealthUnhealthy {
			t.Fatalf("Workloads after delete = %+v, %v", ws, err)
		}
		if _, err := rs[1].RenewWorkload(ctx, "w1", state.HealthHealthy, ttl); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Renew(deleted) = %v, want ErrNotFound", err)
		}
	}},
	{"workloads expire unless renewed", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx := testCtx(t)
		sig := rs[1].WatchWorkloads(ctx)
		ttl := time.Second
		for _, id := range []string{"kept", "lapsed"} {
			if err := rs[0].PutWorkload(ctx, workload(id, state.HealthHealthy), ttl); err != nil {
				t.Fatal(err)
			}
		}
		recvSignal(t, sig, "put")
		// Renew "kept" until "lapsed" is gone: expiry is asserted within a bounded testWait, since a
		// backend may round short TTLs up.
		deadline := time.Now().Add(testWait)
		for {
			if _, err := rs[0].RenewWorkload(ctx, "kept", state.HealthHealthy, ttl); err != nil {
				t.Fatalf("renewing a live workload: %v", err)
			}
			ws, err := rs[1].Workloads(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) == 1 && ws[0].ID == "kept" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lapsed workload still listed after %s: %+v", testWait, ws)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The expiry was signalled (the signal may have come before the list changed).
		recvSignal(t, sig, "expiry")
		eventually(t, "renewing an expired workload fails", func() bool {
			_, err := rs[0].RenewWorkload(ctx, "lapsed", state.HealthHealthy, ttl)
			return errors.Is(err, ErrNotFound)
		})
	}},
	{"keys", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{})
		ctx := testCtx(t)
		if _, err := s.GetKey(ctx, "ca"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("GetKey(unset) = %v, want ErrNotFound", err)
		}
		for _, tc := range []struct {
			desc     string
			value    string
			ifAbsent bool
			wantErr  error
			want     string
		}{
			{"create", "one", true, nil, "one"},
			{"create again", "two", true, ErrExists, "one"},
			{"overwrite", "three", false, nil, "three"},
			{"empty value", "", false, nil, ""},
		} {
			if err := s.PutKey(ctx, "ca", []byte(tc.value), tc.ifAbsent); !errors.Is(err, tc.wantErr) {
				t.Fatalf("%s: PutKey = %v, want %v", tc.desc, err, tc.wantErr)
			}
			got, err := s.GetKey(ctx, "ca")
			if err != nil || string(got) != tc.want {
				t.Fatalf("%s: GetKey = %q, %v; want %q", tc.desc, got, err, tc.want)
			}
		}
	}},
	{"put key if absent from two replicas: one wins", func(t *testing.T, open replicas) {
		rs := open(t, contractOpts{n: 2})
		ctx := testCtx(t)
		const n = 10
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				errs[i] = rs[i%2].PutKey(ctx, "ca", fmt.Appendf(nil, "value %d", i), true)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("both %d and %d won", winner, i)
				}
				winner = i
			case !errors.Is(err, ErrExists):
				t.Fatalf("PutKey %d = %v, want nil or ErrExists", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("nobody won")
		}
		for _, s := range rs {
			got, err := s.GetKey(ctx, "ca")
			if err != nil || !bytes.Equal(got, fmt.Appendf(nil, "value %d", winner)) {
				t.Fatalf("GetKey = %q, %v; want the winner's value %d", got, err, winner)
			}
		}
	}},
	{"campaign leads; leadership ends with its context", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{})
		ctx, cancel := context.WithCancel(testCtx(t))
		lost, err := s.Campaign(ctx, "replica-a")
		if err != nil {
			t.Fatal(err)
		}
		if l, err := s.Leader(testCtx(t)); err != nil || l != "replica-a" {
			t.Fatalf("Leader = %q, %v", l, err)
		}
		select {
		case <-lost:
			t.Fatal("leadership lost while campaigning")
		default:
		}
		cancel()
		select {
		case <-lost:
		case <-time.After(testWait):
			t.Fatal("leadership not given up after the context ended")
		}
		eventually(t, "no leader after resigning", func() bool {
			l, err := s.Leader(testCtx(t))
			return err == nil && l == ""
		})
	}},
	{"close ends watches", func(t *testing.T, open replicas) {
		s := one(t, open, contractOpts{})
		ctx := testCtx(t)
		cw := s.WatchConfig(ctx)
		ww := s.WatchWorkloads(ctx)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		for _, closed := range []func() bool{
			func() bool { _, ok := <-cw; return !ok },
			func() bool { _, ok := <-ww; return !ok },
		} {
			done := make(chan bool, 1)
			go func() { done <- closed() }()
			select {
			case ok := <-done:
				if !ok {
					t.Fatal("watch sent a value after Close")
				}
			case <-time.After(testWait):
				t.Fatal("watch not closed by Close")
			}
		}
	}},
}
