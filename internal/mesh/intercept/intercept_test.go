package intercept_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/meshgate/meshgate/internal/mesh/intercept"
	"github.com/meshgate/meshgate/internal/mesh/netns"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
)

const (
	proxyMark    = 0x4d47
	outboundPort = 15001
	inboundPort  = 15006
	dnsPort      = 15053
	appPort      = 8080
	excludedPort = 9090
	peerPort     = 80
)

// testbed is two namespaces on a host bridge: app (intercepted) and peer.
type testbed struct {
	app, peer         *netns.Namespace
	appAddr, peerAddr netip.Addr
}

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces not available (run as root to test): %v", err)
	}
	var subnet netip.Prefix
	for range 20 {
		subnet = netip.MustParsePrefix(fmt.Sprintf("198.%d.%d.0/24", 18+rand.IntN(2), rand.IntN(256)))
		if r, err := netlink.RouteGet(subnet.Addr().Next().AsSlice()); err != nil || len(r) == 0 || r[0].Gw != nil {
			break // Not directly connected to the host: free.
		}
	}
	at := func(n byte) netip.Prefix {
		a := subnet.Addr().As4()
		a[3] = n
		return netip.PrefixFrom(netip.AddrFrom4(a), 24)
	}
	br, err := netns.NewBridge(netns.RandomName("mgb"), at(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Delete() })
	tb := &testbed{appAddr: at(10).Addr(), peerAddr: at(11).Addr()}
	for i, p := range []**netns.Namespace{&tb.app, &tb.peer} {
		ns, err := netns.Create(netns.RandomName("mgt-"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = ns.Delete() })
		if err := br.Attach(ns, netns.RandomName("mgv"), at(byte(10+i))); err != nil {
			t.Fatal(err)
		}
		*p = ns
	}
	return tb
}

// serve listens on addr in ns and answers every connection with tag, followed by the
// connection's original destination when withOrig is set.
func serve(t *testing.T, ns *netns.Namespace, addr, tag string, withOrig bool) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for range 100 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reply := tag
			if withOrig {
				dst, err := intercept.OriginalDst(c)
				if err != nil {
					reply += " error: " + err.Error()
				} else {
					reply += " " + dst.String()
				}
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
}

// fetch connects from ns to addr with d and reads the reply.
func fetch(t *testing.T, ns *netns.Namespace, d *net.Dialer, addr string) string {
	t.Helper()
	var c net.Conn
	if err := ns.Do(func() error {
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

func ruleCount(t *testing.T, ns *netns.Namespace) int {
	t.Helper()
	n := 0
	if err := ns.Do(func() error {
		c, err := nftables.New()
		if err != nil {
			return err
		}
		chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
		if err != nil {
			return err
		}
		for _, ch := range chains {
			if ch.Table.Name != intercept.TableName {
				continue
			}
			rules, err := c.GetRules(ch.Table, ch)
			if err != nil {
				return err
			}
			n += len(rules)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIntercept(t *testing.T) {
	tb := newTestbed(t)
	var vips intercept.VIPs
	if err := vips.Update([]string{"greeter.shop"}); err != nil {
		t.Fatal(err)
	}

	// The peer serves directly; the app namespace has the sidecar's listeners and the app.
	peer := netip.AddrPortFrom(tb.peerAddr, peerPort).String()
	serve(t, tb.peer, peer, "peer", false)
	serve(t, tb.app, fmt.Sprintf("127.0.0.1:%d", outboundPort), "outbound", true)
	serve(t, tb.app, fmt.Sprintf(":%d", inboundPort), "inbound", true)
	serve(t, tb.app, fmt.Sprintf(":%d", appPort), "app", false)
	serve(t, tb.app, fmt.Sprintf(":%d", excludedPort), "excluded", false)
	responder := &intercept.DNS{Lookup: vips.Lookup}
	if err := tb.app.Do(func() error { return responder.Start(fmt.Sprintf("127.0.0.1:%d", dnsPort)) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = responder.Shutdown(ctx)
	})

	rules := intercept.Rules{
		ProxyMark:           proxyMark,
		OutboundPort:        outboundPort,
		InboundPort:         inboundPort,
		ExcludeInboundPorts: []uint16{excludedPort},
		DNSPort:             dnsPort,
	}
	if err := tb.app.Do(func() error { return intercept.Install(rules) }); err != nil {
		t.Fatal(err)
	}
	plain, marked := &net.Dialer{Timeout: 5 * time.Second}, intercept.MarkDialer(proxyMark)
	marked.Timeout = 5 * time.Second
	appAt := func(port int) string { return netip.AddrPortFrom(tb.appAddr, uint16(port)).String() }

	for _, tc := range []struct {
		desc   string
		from   *netns.Namespace
		dialer *net.Dialer
		addr   string
		want   string
	}{
		{"unmarked outbound lands on the outbound port", tb.app, plain, peer, "outbound " + peer},
		{"marked outbound reaches the peer", tb.app, marked, peer, "peer"},
		{"inbound to an app port lands on the inbound port", tb.peer, plain, appAt(appPort), "inbound " + appAt(appPort)},
		{"inbound to the excluded port reaches the app", tb.peer, plain, appAt(excludedPort), "excluded"},
		{"loopback is not redirected", tb.app, plain, fmt.Sprintf("127.0.0.1:%d", appPort), "app"},
		{"own address is not redirected", tb.app, plain, appAt(appPort), "app"},
	} {
		if got := fetch(t, tc.from, tc.dialer, tc.addr); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.desc, got, tc.want)
		}
	}

	// DNS to any nameserver is answered by the responder.
	for _, tc := range []struct {
		desc, network, name string
		rcode               int
		a                   string
	}{
		{"known service over udp", "udp", "greeter.shop.mesh.", dns.RcodeSuccess, vips.Addr("greeter.shop").String()},
		{"known service over tcp", "tcp", "greeter.shop.mesh.", dns.RcodeSuccess, vips.Addr("greeter.shop").String()},
		{"unknown service", "udp", "nope.shop.mesh.", dns.RcodeNameError, ""},
	} {
		var resp *dns.Msg
		if err := tb.app.Do(func() error {
			var err error
			resp, _, err = (&dns.Client{Net: tc.network, Timeout: 5 * time.Second}).
				Exchange(new(dns.Msg).SetQuestion(tc.name, dns.TypeA), netip.AddrPortFrom(tb.peerAddr, 53).String())
			return err
		}); err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		got := ""
		if len(resp.Answer) == 1 {
			got = resp.Answer[0].(*dns.A).A.String()
		}
		if resp.Rcode != tc.rcode || got != tc.a {
			t.Errorf("%s: rcode %s, A %q; want %s, %q", tc.desc, dns.RcodeToString[resp.Rcode], got, dns.RcodeToString[tc.rcode], tc.a)
		}
	}

	// Installing again replaces the table instead of adding to it.
	once := ruleCount(t, tb.app)
	if err := tb.app.Do(func() error { return intercept.Install(rules) }); err != nil {
		t.Fatal(err)
	}
	if twice := ruleCount(t, tb.app); twice != once || once == 0 {
		t.Fatalf("rules after one Install: %d, after two: %d", once, twice)
	}

	// Remove restores direct connectivity.
	if err := tb.app.Do(intercept.Remove); err != nil {
		t.Fatal(err)
	}
	var installed bool
	if err := tb.app.Do(func() (err error) { installed, err = intercept.Installed(); return err }); err != nil || installed {
		t.Fatalf("Installed after Remove: %v, %v", installed, err)
	}
	if got := fetch(t, tb.app, plain, peer); got != "peer" {
		t.Fatalf("after Remove: got %q, want peer", got)
	}
	if got := fetch(t, tb.peer, plain, appAt(appPort)); got != "app" {
		t.Fatalf("inbound after Remove: got %q, want app", got)
	}
	if err := tb.app.Do(intercept.Remove); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestRulesValidate(t *testing.T) {
	uid := uint32(1337)
	for _, tc := range []struct {
		desc  string
		rules intercept.Rules
		want  string
	}{
		{"nothing", intercept.Rules{}, "capture nothing"},
		{"outbound without exemption", intercept.Rules{OutboundPort: 15001}, "ProxyUID or ProxyMark"},
		{"both port lists", intercept.Rules{ProxyUID: &uid, InboundPort: 1, InboundPorts: []uint16{80}, ExcludeInboundPorts: []uint16{90}}, "not both"},
		{"bad CIDR", intercept.Rules{ProxyUID: &uid, OutboundPort: 1, ExcludeOutboundCIDRs: []netip.Prefix{{}}}, "invalid excluded CIDR"},
	} {
		err := tc.rules.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tc.desc, err, tc.want)
		}
	}
}
