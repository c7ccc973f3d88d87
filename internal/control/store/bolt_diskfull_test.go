package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/control/state"
)

// tinyFS mounts a 256 KiB tmpfs in a temporary directory and unmounts it when the test ends. It
// skips the test when not running as root or when the mount fails.
func tinyFS(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("disk-full test needs root to mount a tiny tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Skipf("disk-full test: cannot mount a tmpfs (%v)", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes to a file in dir until the file system is full.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{'x'}, 4096)
	for range 1 << 12 { // far more than 256 KiB
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
	t.Fatal("the tiny file system never filled up")
}

func TestBoltDiskFull(t *testing.T) {
	dir := tinyFS(t)
	ctx := testCtx(t)
	path := filepath.Join(dir, "control.db")
	b, err := OpenBolt(path, BoltOptions{SweepInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustApply(t, b, 0, "a: 1\n")
	if err := b.PutWorkload(ctx, workload("w1", state.HealthHealthy), time.Minute); err != nil {
		t.Fatal(err)
	}
	fill(t, dir)

	// A revision too large for the pages the file already has needs new ones.
	big := Revision{YAML: []byte("a: " + strings.Repeat("y", 128<<10) + "\n")}
	for _, tc := range []struct {
		desc string
		op   func() error
	}{
		{"apply", func() error { _, err := b.Apply(ctx, 1, big); return err }},
		{"put key", func() error { return b.PutKey(ctx, "big", big.YAML, false) }},
	} {
		if err := tc.op(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("%s on a full disk = %v, want ErrUnavailable", tc.desc, err)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", tc.desc, err)
		}
	}
	if up := metricValue(t, b.m.up); up != 0 {
		t.Errorf("up after a failed write = %v, want 0", up)
	}
	cur, err := b.Current(ctx)
	if err != nil || cur.Version != 1 || string(cur.YAML) != "a: 1\n" {
		t.Fatalf("Current after the failed apply = %+v, %v; want version 1", cur, err)
	}
	if ws, err := b.Workloads(ctx); err != nil || len(ws) != 1 {
		t.Fatalf("Workloads after the failed apply = %+v, %v", ws, err)
	}
	if _, err := b.GetKey(ctx, "big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetKey(big) = %v, want ErrNotFound", err)
	}

	// Space freed: writes work again.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(ctx, 1, Revision{YAML: []byte("a: 2\n")}); err != nil {
		t.Fatalf("apply after freeing space: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatalf("reopen after a disk-full episode: %v", err)
	}
	defer b2.Close()
	if cur, err := b2.Current(ctx); err != nil || cur.Version != 2 {
		t.Fatalf("Current after reopen = %+v, %v", cur, err)
	}
}
