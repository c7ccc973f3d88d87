package intercept

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"
)

func startDNS(t *testing.T, d *DNS) string {
	t.Helper()
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d.Addr().String()
}

// closedUDPPort returns a loopback address nothing listens on.
func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestDNS(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // Registered first, so it runs after the shutdowns.
	var vips VIPs
	if err := vips.Update([]string{"greeter.shop", "db.default"}); err != nil {
		t.Fatal(err)
	}
	// An upstream for names outside the mesh zone: another responder, authoritative for "example".
	upstream := startDNS(t, &DNS{Zone: "example", Lookup: func(name string) (netip.Addr, bool) {
		return netip.MustParseAddr("192.0.2.7"), name == "www.web"
	}})
	withUpstream := startDNS(t, &DNS{Lookup: vips.Lookup, Upstreams: []string{closedUDPPort(t), upstream}, UpstreamTimeout: time.Second})
	refusing := startDNS(t, &DNS{Lookup: vips.Lookup})

	type want struct {
		rcode int
		a     string // the A record's address, "" for none
		soa   bool   // SOA in the authority section
	}
	for _, tc := range []struct {
		desc   string
		server string
		name   string
		qtype  uint16
		want   want
	}{
		{"service A", refusing, "greeter.shop.mesh.", dns.TypeA, want{dns.RcodeSuccess, vips.Addr("greeter.shop").String(), false}},
		{"case insensitive", refusing, "GREETER.Shop.mesh.", dns.TypeA, want{dns.RcodeSuccess, vips.Addr("greeter.shop").String(), false}},
		{"service AAAA is NODATA", refusing, "greeter.shop.mesh.", dns.TypeAAAA, want{dns.RcodeSuccess, "", true}},
		{"unknown service", refusing, "nope.shop.mesh.", dns.TypeA, want{dns.RcodeNameError, "", true}},
		{"invalid label", refusing, "a_b.shop.mesh.", dns.TypeA, want{dns.RcodeNameError, "", true}},
		{"too deep", refusing, "x.greeter.shop.mesh.", dns.TypeA, want{dns.RcodeNameError, "", true}},
		{"namespace is NODATA", refusing, "shop.mesh.", dns.TypeA, want{dns.RcodeSuccess, "", true}},
		{"apex SOA", refusing, "mesh.", dns.TypeSOA, want{dns.RcodeSuccess, "", false}},
		{"outside without upstreams", refusing, "www.web.example.", dns.TypeA, want{dns.RcodeRefused, "", false}},
		{"outside forwarded past a dead upstream", withUpstream, "www.web.example.", dns.TypeA, want{dns.RcodeSuccess, "192.0.2.7", false}},
		{"forwarded NXDOMAIN", withUpstream, "nope.web.example.", dns.TypeA, want{dns.RcodeNameError, "", true}},
		{"mesh names not forwarded", withUpstream, "db.default.mesh.", dns.TypeA, want{dns.RcodeSuccess, vips.Addr("db.default").String(), false}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: network, Timeout: 5 * time.Second}
			m := new(dns.Msg).SetQuestion(tc.name, tc.qtype)
			resp, _, err := c.Exchange(m, tc.server)
			if err != nil {
				t.Fatalf("%s over %s: %v", tc.desc, network, err)
			}
			var got want
			got.rcode = resp.Rcode
			for _, rr := range resp.Answer {
				if a, ok := rr.(*dns.A); ok {
					got.a = a.A.String()
					if a.Hdr.Ttl == 0 {
						t.Errorf("%s over %s: zero TTL", tc.desc, network)
					}
				}
			}
			for _, rr := range resp.Ns {
				_, got.soa = rr.(*dns.SOA)
			}
			if got != tc.want {
				t.Errorf("%s over %s: got %+v, want %+v\n%v", tc.desc, network, got, tc.want, resp)
			}
		}
	}
}

func TestDNSAllUpstreamsDown(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // Registered first, so it runs after the shutdowns.
	addr := startDNS(t, &DNS{Upstreams: []string{closedUDPPort(t)}, UpstreamTimeout: time.Second})
	resp, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(new(dns.Msg).SetQuestion("example.org.", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
}

func TestDNSLifecycle(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // Registered first, so it runs after the shutdowns.
	d := &DNS{}
	if err := d.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := d.Start("127.0.0.1:0"); err == nil {
		t.Fatal("second Start succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	// The port is free again.
	pc, err := net.ListenPacket("udp", d.Addr().String())
	if err != nil {
		t.Fatalf("port still bound after Shutdown: %v", err)
	}
	pc.Close()
	if err := (&DNS{Zone: "."}).Start("127.0.0.1:0"); err == nil {
		t.Fatal("root zone accepted")
	}
}
