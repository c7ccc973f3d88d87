package intercept

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func TestVIPsDeterministic(t *testing.T) {
	names := make([]string, 3000)
	for i := range names {
		names[i] = fmt.Sprintf("svc%d.ns%d", i, i%7)
	}
	reversed := slices.Clone(names)
	slices.Reverse(reversed)
	var a, b VIPs
	if err := a.Update(names); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(append(reversed, names[:10]...)); err != nil { // Order and duplicates do not matter.
		t.Fatal(err)
	}
	if a.Len() != len(names) || b.Len() != len(names) {
		t.Fatalf("Len %d and %d, want %d", a.Len(), b.Len(), len(names))
	}
	seen := map[netip.Addr]bool{}
	for _, n := range names {
		addr := a.Addr(n)
		if addr != b.Addr(n) {
			t.Fatalf("%s: %v in one run, %v in another", n, addr, b.Addr(n))
		}
		if !VIPRange().Contains(addr) {
			t.Fatalf("%s: %v outside %v", n, addr, VIPRange())
		}
		if last := addr.As4()[3]; last == 0 || last == 255 {
			t.Fatalf("%s: %v ends in .%d", n, addr, last)
		}
		if seen[addr] {
			t.Fatalf("%s: %v handed out twice", n, addr)
		}
		seen[addr] = true
		if got, ok := a.Service(addr); !ok || got != n {
			t.Fatalf("Service(%v) = %q, %v; want %q", addr, got, ok, n)
		}
		if got, ok := a.Service(netip.AddrFrom16(addr.As16())); !ok || got != n {
			t.Fatalf("Service(mapped %v) = %q, %v; want %q", addr, got, ok, n)
		}
	}
}

func TestVIPsUpdate(t *testing.T) {
	for _, tc := range []struct {
		desc          string
		before, after []string
	}{
		{"add keeps existing", []string{"a.x", "b.x"}, []string{"a.x", "b.x", "c.x"}},
		{"remove keeps the rest", []string{"a.x", "b.x", "c.x"}, []string{"c.x", "a.x"}},
		{"replace all", []string{"a.x"}, []string{"d.y", "e.y"}},
		{"empty", []string{"a.x"}, nil},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			var v VIPs
			if err := v.Update(tc.before); err != nil {
				t.Fatal(err)
			}
			old := map[string]netip.Addr{}
			for _, n := range tc.before {
				old[n] = v.Addr(n)
			}
			if err := v.Update(tc.after); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.after {
				if a, ok := old[n]; ok && v.Addr(n) != a {
					t.Errorf("%s moved from %v to %v", n, a, v.Addr(n))
				}
				if _, ok := v.Lookup(n); !ok {
					t.Errorf("%s missing", n)
				}
			}
			for n, a := range old {
				if slices.Contains(tc.after, n) {
					continue
				}
				if _, ok := v.Lookup(n); ok {
					t.Errorf("%s still present", n)
				}
				if got, ok := v.Service(a); ok && got == n {
					t.Errorf("%v still maps to removed %s", a, n)
				}
			}
		})
	}
}

func TestVIPsStableUnderCollision(t *testing.T) {
	// Find two names that hash to the same slot, then add them in both orders: the first one
	// present keeps the hashed slot.
	byslot := map[uint32]string{}
	var x, y string
	for i := 0; x == ""; i++ {
		if i > 1_000_000 {
			t.Fatal("no collision found")
		}
		n := fmt.Sprintf("s%d.ns", i)
		if other, ok := byslot[vipHash(n)]; ok {
			x, y = other, n
		}
		byslot[vipHash(n)] = n
	}
	var v VIPs
	if err := v.Update([]string{y}); err != nil {
		t.Fatal(err)
	}
	ya := v.Addr(y)
	if err := v.Update([]string{x, y}); err != nil {
		t.Fatal(err)
	}
	if v.Addr(y) != ya || v.Addr(x) == ya {
		t.Fatalf("after adding %s: %s=%v (was %v), %s=%v", x, y, v.Addr(y), ya, x, v.Addr(x))
	}
}

func TestVIPsFull(t *testing.T) {
	names := make([]string, vipSlots+1)
	for i := range names {
		names[i] = fmt.Sprintf("s%d.n", i)
	}
	var v VIPs
	if err := v.Update(names); err == nil {
		t.Fatal("Update with more names than addresses succeeded")
	}
	if err := v.Update(names[:vipSlots]); err != nil {
		t.Fatalf("Update filling every address: %v", err)
	}
	if _, ok := v.Lookup("unknown"); ok || v.Addr("unknown").IsValid() {
		t.Fatal("unknown name found")
	}
}

func TestVIPsZeroValue(t *testing.T) {
	var v VIPs
	if _, ok := v.Lookup("a.b"); ok {
		t.Fatal("zero VIPs found a name")
	}
	if _, ok := v.Service(netip.MustParseAddr("240.240.0.1")); ok {
		t.Fatal("zero VIPs found an address")
	}
}
