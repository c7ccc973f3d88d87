package store

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/meshgate/meshgate/internal/testetcd"
)

func TestEtcdUsernamePassword(t *testing.T) {
	srv := testetcd.Start(t)
	ctx := testCtx(t)
	admin, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-secret"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	_ = admin.Close()

	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if e, err := OpenEtcd(short, EtcdOptions{Endpoints: srv.Endpoints, Username: "root", Password: "wrong"}); err == nil {
		_ = e.Close()
		t.Fatal("OpenEtcd with a wrong password succeeded")
	} else if errors.Is(err, ErrUnavailable) {
		t.Fatalf("a wrong password reported as an outage: %v", err)
	}

	e := openEtcd(t, srv, EtcdOptions{Username: "root", Password: "root-secret"})
	mustApply(t, e, 0, "a: 1\n")
	if err := e.PutKey(ctx, "k", []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	if v, err := e.GetKey(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("GetKey = %q, %v", v, err)
	}
}
