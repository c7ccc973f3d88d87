package ipaccess

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// upstream is the next handler: it counts the requests that reach it.
type upstream struct{ hits int }

func (u *upstream) Serve(*proxy.Exchange) error {
	u.hits++
	return nil
}

func TestPolicy(t *testing.T) {
	both := &config.IPAccess{
		Allow: []string{"10.0.0.0/8", "192.168.1.7", "2001:db8::/32", "::ffff:172.16.0.0/108"},
		Deny:  []string{"10.6.0.0/16", "10.9.9.9", "2001:db8:bad::/48"},
	}
	denyOnly := &config.IPAccess{Deny: []string{"203.0.113.0/24", "2001:db8::1"}}
	allowV6 := &config.IPAccess{Allow: []string{"::/0"}}
	for _, tc := range []struct {
		name  string
		p     *config.IPAccess
		addr  string
		admit bool
	}{
		{"in allow", both, "10.1.2.3", true},
		{"single allowed address", both, "192.168.1.7", true},
		{"next to it", both, "192.168.1.8", false},
		{"outside allow", both, "11.0.0.1", false},
		{"deny wins over allow", both, "10.6.1.1", false},
		{"denied single address", both, "10.9.9.9", false},
		{"next to denied address", both, "10.9.9.10", true},
		{"IPv4-mapped in allow", both, "::ffff:10.1.2.3", true},
		{"IPv4-mapped in deny", both, "::ffff:10.6.1.1", false},
		{"mapped allow entry, IPv4 client", both, "172.16.5.5", true},
		{"mapped allow entry, mapped client", both, "::ffff:172.16.5.5", true},
		{"mapped allow entry, outside", both, "172.32.0.1", false},
		{"IPv6 in allow", both, "2001:db8:1::1", true},
		{"IPv6 denied", both, "2001:db8:bad::1", false},
		{"IPv6 outside", both, "2001:db9::1", false},
		{"IPv6 with zone", both, "2001:db8:1::1%eth0", true},
		{"zone on denied address", both, "2001:db8:bad::1%eth0", false},
		{"unknown address", both, "", false},
		{"deny only, other address", denyOnly, "198.51.100.1", true},
		{"deny only, denied", denyOnly, "203.0.113.9", false},
		{"deny only, mapped denied", denyOnly, "::ffff:203.0.113.9", false},
		{"deny only, denied IPv6", denyOnly, "2001:db8::1", false},
		{"deny only, IPv6 neighbour", denyOnly, "2001:db8::2", true},
		{"deny only, unknown address", denyOnly, "", false},
		{"::/0 admits IPv6", allowV6, "::1", true},
		{"::/0 does not cover IPv4", allowV6, "127.0.0.1", false},
		{"::/0 does not cover IPv4-mapped", allowV6, "::ffff:127.0.0.1", false},
		{"empty policy", &config.IPAccess{}, "192.0.2.1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mw, err := New("r", tc.p)
			if err != nil {
				t.Fatal(err)
			}
			x := &proxy.Exchange{Route: "r"}
			if tc.addr != "" {
				x.ClientIP = netip.MustParseAddr(tc.addr)
			}
			up := &upstream{}
			err = mw(up).Serve(x)
			if tc.admit {
				if err != nil || up.hits != 1 {
					t.Fatalf("err %v, upstream hits %d; want the request forwarded", err, up.hits)
				}
				return
			}
			var pe *proxy.Error
			if !errors.As(err, &pe) || pe.Status != 403 || pe.Reason != proxy.ReasonIPDenied || up.hits != 0 {
				t.Fatalf("err %v, upstream hits %d; want 403 ip_denied", err, up.hits)
			}
			if !strings.Contains(err.Error(), `ipaccess: route "r": `) {
				t.Errorf("cause %q does not name the route", err)
			}
		})
	}
}

func TestNewRejectsInvalidPolicies(t *testing.T) {
	for _, tc := range []struct {
		p    *config.IPAccess
		want string
	}{
		{nil, "no policy"},
		{&config.IPAccess{Allow: []string{"10.0.0.0/8", "10.0.0.300"}}, `allow: "10.0.0.300" is neither a CIDR nor an address`},
		{&config.IPAccess{Deny: []string{"10.0.0.0/40"}}, `deny: "10.0.0.0/40" is not a CIDR`},
		{&config.IPAccess{Deny: []string{"fe80::1%lo"}}, `deny: "fe80::1%lo" has a zone`},
	} {
		_, err := New("r", tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `ipaccess: route "r": `) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
}

// BenchmarkAdmitted measures an admitted request against a short allow and deny list.
func BenchmarkAdmitted(b *testing.B) {
	mw, err := New("r", &config.IPAccess{Allow: []string{"10.0.0.0/8", "192.168.0.0/16"}, Deny: []string{"10.6.0.0/16"}})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(&upstream{})
	x := &proxy.Exchange{ClientIP: netip.MustParseAddr("::ffff:192.168.1.1")}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Serve(x); err != nil {
			b.Fatal(err)
		}
	}
}
