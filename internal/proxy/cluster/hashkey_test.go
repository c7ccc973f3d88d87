package cluster

import (
	"net/netip"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/cluster/xxhash"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestHashKey(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	v4b := v4.As4()
	v6 := netip.MustParseAddr("2001:db8::7")
	v6b := v6.As16()
	tests := []struct {
		desc   string
		on     *config.HashOn
		header httpmsg.Header
		ip     netip.Addr
		want   uint64
		ok     bool
	}{
		{desc: "nil setting", header: httpmsg.Header{{Name: "X-User", Value: "alice"}}},
		{desc: "header", on: &config.HashOn{Header: "X-User"}, header: httpmsg.Header{{Name: "x-user", Value: "alice"}}, want: xxhash.Sum64String("alice"), ok: true},
		{desc: "first header field wins", on: &config.HashOn{Header: "X-User"}, header: httpmsg.Header{{Name: "X-User", Value: "alice"}, {Name: "X-User", Value: "bob"}}, want: xxhash.Sum64String("alice"), ok: true},
		{desc: "header absent", on: &config.HashOn{Header: "X-User"}, header: httpmsg.Header{{Name: "X-Other", Value: "alice"}}},
		{desc: "header empty", on: &config.HashOn{Header: "X-User"}, header: httpmsg.Header{{Name: "X-User", Value: ""}}},
		{desc: "only cookie", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: "sid=abc"}}, want: xxhash.Sum64String("abc"), ok: true},
		{desc: "cookie among others", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "cookie", Value: "a=1; xsid=no;sid=abc ; z=2"}}, want: xxhash.Sum64String("abc"), ok: true},
		{desc: "quoted cookie", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: `sid="abc"`}}, want: xxhash.Sum64String("abc"), ok: true},
		{desc: "cookie in a second field", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: "a=1"}, {Name: "Cookie", Value: "sid=abc"}}, want: xxhash.Sum64String("abc"), ok: true},
		{desc: "cookie names are case-sensitive", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: "SID=abc"}}},
		{desc: "cookie absent", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: "a=1; sidx=2; =3; junk"}}},
		{desc: "cookie empty", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "Cookie", Value: "sid=; a=1"}}},
		{desc: "no cookie header", on: &config.HashOn{Cookie: "sid"}, header: httpmsg.Header{{Name: "X-Sid", Value: "sid=abc"}}},
		{desc: "IPv4", on: &config.HashOn{SourceIP: true}, ip: v4, want: xxhash.Sum64(v4b[:]), ok: true},
		{desc: "IPv4-mapped IPv6 hashes as IPv4", on: &config.HashOn{SourceIP: true}, ip: netip.AddrFrom16(v4.As16()), want: xxhash.Sum64(v4b[:]), ok: true},
		{desc: "IPv6", on: &config.HashOn{SourceIP: true}, ip: v6, want: xxhash.Sum64(v6b[:]), ok: true},
		{desc: "no client IP", on: &config.HashOn{SourceIP: true}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			got, ok := HashKey(tt.on, tt.header, tt.ip)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("HashKey = %#x, %v; want %#x, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestHashKeyDoesNotAllocate(t *testing.T) {
	h := httpmsg.Header{{Name: "Host", Value: "example.com"}, {Name: "Cookie", Value: "a=1; sid=\"0123456789abcdef0123456789abcdef\""}, {Name: "X-User", Value: "alice"}}
	ip := netip.MustParseAddr("2001:db8::7")
	for _, on := range []*config.HashOn{{Header: "X-User"}, {Cookie: "sid"}, {SourceIP: true}} {
		if n := testing.AllocsPerRun(100, func() { HashKey(on, h, ip) }); n != 0 {
			t.Errorf("HashKey(%+v) allocates %v times", *on, n)
		}
	}
}

func FuzzCookieValue(f *testing.F) {
	f.Add("a=1; sid=abc", "sid")
	f.Add(`sid="x"; ;;=; sid=2`, "sid")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, value, name string) {
		v, ok := cookieValue(httpmsg.Header{{Name: "Cookie", Value: value}}, name)
		if !ok && v != "" {
			t.Fatalf("absent cookie with value %q", v)
		}
		if len(v) > len(value) {
			t.Fatalf("value %q longer than the header", v)
		}
	})
}

func BenchmarkHashKey(b *testing.B) {
	h := httpmsg.Header{
		{Name: "Host", Value: "example.com"},
		{Name: "User-Agent", Value: "bench"},
		{Name: "Cookie", Value: "theme=dark; lang=en; sid=0123456789abcdef0123456789abcdef"},
		{Name: "X-User", Value: "alice@example.com"},
	}
	ip := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name string
		on   *config.HashOn
	}{
		{"header", &config.HashOn{Header: "X-User"}},
		{"cookie", &config.HashOn{Cookie: "sid"}},
		{"sourceIP", &config.HashOn{SourceIP: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				HashKey(tc.on, h, ip)
			}
		})
	}
}
