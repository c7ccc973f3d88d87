package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/control/state"
)

// openBolt opens a store in path and closes it when the test ends.
func openBolt(t *testing.T, path string, opts BoltOptions) *Bolt {
	t.Helper()
	if opts.SweepInterval == 0 {
		opts.SweepInterval = 100 * time.Millisecond
	}
	b, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestBoltContract(t *testing.T) {
	runContract(t, func(t *testing.T, o contractOpts) []Store {
		b := openBolt(t, filepath.Join(t.TempDir(), "control.db"), BoltOptions{HistoryLimit: o.historyLimit})
		rs := []Store{b}
		for len(rs) < o.n {
			rs = append(rs, b)
		}
		return rs
	})
}

func TestBoltFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	openBolt(t, path, BoltOptions{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestBoltReopenKeepsStateAndExtendsExpiry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.db")
	ctx := testCtx(t)
	b, err := OpenBolt(path, BoltOptions{SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, b, 0, "a: 1\n")
	mustApply(t, b, 1, "a: 2\n")
	ttl := 2 * time.Second
	if err := b.PutWorkload(ctx, workload("w1", state.HealthHealthy), ttl); err != nil {
		t.Fatal(err)
	}
	if err := b.PutKey(ctx, "ca", []byte("pem"), true); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The workload's registration lapses while the control plane is down.
	time.Sleep(ttl + 100*time.Millisecond)

	start := time.Now()
	b = openBolt(t, path, BoltOptions{})
	if cur, err := b.Current(ctx); err != nil || cur.Version != 2 || string(cur.YAML) != "a: 2\n" {
		t.Fatalf("Current after reopen = %+v, %v", cur, err)
	}
	if h, err := b.History(ctx, 0); err != nil || len(h) != 2 {
		t.Fatalf("History after reopen = %d, %v", len(h), err)
	}
	if v, err := b.GetKey(ctx, "ca"); err != nil || string(v) != "pem" {
		t.Fatalf("GetKey after reopen = %q, %v", v, err)
	}
	ws, err := b.Workloads(ctx)
	if err != nil || len(ws) != 1 {
		t.Fatalf("Workloads after reopen = %+v, %v (want the lapsed workload kept)", ws, err)
	}
	if ws[0].Expires.Before(start.Add(ttl)) {
		t.Fatalf("expiry %v not extended to at least %v", ws[0].Expires, start.Add(ttl))
	}
	// It can heartbeat again.
	if _, err := b.RenewWorkload(ctx, "w1", state.HealthHealthy, ttl); err != nil {
		t.Fatalf("renew after reopen: %v", err)
	}
}

func TestBoltLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.db")
	openBolt(t, path, BoltOptions{})
	start := time.Now()
	_, err := OpenBolt(path, BoltOptions{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("second open of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("error %q does not name the locked file", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("second open took %s", d)
	}
}

func TestBoltMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := testCtx(t)
	b := openBolt(t, filepath.Join(t.TempDir(), "control.db"), BoltOptions{Registerer: reg})
	// A second store on the same registry shares the collectors.
	openBolt(t, filepath.Join(t.TempDir(), "control.db"), BoltOptions{Registerer: reg})
	mustApply(t, b, 0, "a: 1\n")
	if _, err := b.Apply(ctx, 0, Revision{}); !errors.Is(err, ErrConflict) {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, 7); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op, result string
		want       float64
	}{
		{"apply", "ok", 1},
		{"apply", "conflict", 1},
		{"get", "not_found", 1},
	} {
		c := metricValue(t, b.m.ops.WithLabelValues("bolt", tc.op, tc.result))
		if c != tc.want {
			t.Errorf("operations{op=%s,result=%s} = %v, want %v", tc.op, tc.result, c, tc.want)
		}
	}
	if up := metricValue(t, b.m.up); up != 1 {
		t.Errorf("up = %v, want 1", up)
	}
	names := gatheredNames(t, reg)
	for _, n := range []string{"meshgate_control_store_operations_total", "meshgate_control_store_up"} {
		if !names[n] {
			t.Errorf("%s not gathered", n)
		}
	}
	_ = b.Close()
	if _, err := b.Current(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Current after Close = %v, want ErrUnavailable", err)
	}
	if up := metricValue(t, b.m.up); up != 0 {
		t.Errorf("up after a failed read = %v, want 0", up)
	}
}
