package edgectx

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	var k, other Key
	k.Set(bytes.Repeat([]byte{7}, 32))
	other.Set(bytes.Repeat([]byte{8}, 32))
	now := time.Unix(1_800_000_000, 0)
	v := k.Sign(Context{Consumer: "acme", Plan: "gold", Route: "orders-api", RequestID: "r1"}, now)
	tamper := func(s string) string {
		p, sig, _ := strings.Cut(strings.TrimPrefix(s, "v1."), ".")
		return "v1." + strings.ToUpper(p[:1]) + p[1:] + "." + sig
	}
	for _, tc := range []struct {
		desc, value, id string
		key             *Key
		at              time.Time
		want            error
	}{
		{"valid", v, "r1", &k, now, nil},
		{"valid without an id to check", v, "", &k, now, nil},
		{"another request", v, "r2", &k, now, ErrOtherID},
		{"expired", v, "r1", &k, now.Add(TTL + time.Second), ErrExpired},
		{"another key", v, "r1", &other, now, ErrSignature},
		{"payload changed", tamper(v), "r1", &k, now, ErrSignature},
		{"garbage", "v1.abc", "r1", &k, now, ErrMalformed},
		{"no key", v, "r1", &Key{}, now, ErrNoKey},
		{"too long", "v1." + strings.Repeat("a", 3000), "r1", &k, now, ErrMalformed},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := tc.key.Verify(tc.value, tc.id, tc.at)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if err == nil && (c.Consumer != "acme" || c.Plan != "gold" || c.Route != "orders-api") {
				t.Fatalf("context %+v", c)
			}
		})
	}
	if (&Key{}).Sign(Context{}, now) != "" {
		t.Error("signed without a key")
	}
}

func FuzzVerify(f *testing.F) {
	var k Key
	k.Set(bytes.Repeat([]byte{7}, 32))
	f.Add(k.Sign(Context{Consumer: "a"}, time.Now()))
	f.Add("v1..")
	f.Fuzz(func(t *testing.T, v string) {
		_, _ = k.Verify(v, "", time.Now())
	})
}
