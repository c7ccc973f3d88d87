package token

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/control/store"
)

func TestTokens(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "control.db"), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tk := &Tokens{Store: st, Now: func() time.Time { return now }}
	ctx := context.Background()
	shop, rec, err := tk.Create(ctx, Grant{Namespace: "shop", Service: "*"}, time.Hour, "shop workloads")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(shop, "mgjt_"+rec.ID+".") || strings.Contains(rec.Digest, strings.Split(shop, ".")[1]) {
		t.Fatalf("token %q, record %+v", shop, rec)
	}
	users, _, err := tk.Create(ctx, Grant{Namespace: "shop", Service: "users"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	last := "A"
	if strings.HasSuffix(shop, "A") {
		last = "B"
	}
	tampered := shop[:len(shop)-1] + last
	tests := []struct {
		desc, token, ns, svc string
		want                 error
	}{
		{"namespace-wide token", shop, "shop", "orders", nil},
		{"service token", users, "shop", "users", nil},
		{"service token, other service", users, "shop", "orders", ErrNotGranted},
		{"namespace-wide token, other namespace", shop, "ops", "orders", ErrNotGranted},
		{"tampered secret", tampered, "shop", "users", ErrInvalid},
		{"unknown id", "mgjt_000000000000.abc", "shop", "users", ErrInvalid},
		{"no prefix", strings.TrimPrefix(shop, "mgjt_"), "shop", "users", ErrInvalid},
		{"empty", "", "shop", "users", ErrInvalid},
		{"bad id", "mgjt_zz.abc", "shop", "users", ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := tk.Authorize(ctx, tc.token, tc.ns, tc.svc)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("Authorize = %v, want %v", err, tc.want)
			}
		})
	}
	now = now.Add(time.Hour)
	if _, err := tk.Check(ctx, shop); !errors.Is(err, ErrExpired) {
		t.Errorf("after its TTL: %v, want ErrExpired", err)
	}
	if _, err := tk.Check(ctx, users); err != nil {
		t.Errorf("a token without TTL: %v", err)
	}
	for _, g := range []Grant{{"Shop", "*"}, {"shop", "a_b"}, {"", "x"}} {
		if _, _, err := tk.Create(ctx, g, 0, ""); err == nil {
			t.Errorf("Create(%+v) accepted an invalid grant", g)
		}
	}
}

func FuzzCheck(f *testing.F) {
	st, err := store.OpenBolt(filepath.Join(f.TempDir(), "control.db"), store.BoltOptions{})
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	tk := &Tokens{Store: st}
	good, _, err := tk.Create(context.Background(), Grant{Namespace: "*", Service: "*"}, 0, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("mgjt_000000000000.x")
	f.Add("mgjt_../../etc.x")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := tk.Check(context.Background(), s)
		if err == nil && s != good {
			t.Fatalf("Check accepted %q as %+v", s, r)
		}
	})
}
