package netns_test

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/mesh/netns"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

func requireNetns(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("network namespaces not available (run as root to test): %v", err)
	}
}

func create(t *testing.T) *netns.Namespace {
	t.Helper()
	ns, err := netns.Create(netns.RandomName("mgt-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("delete %s: %v", ns.Name, err)
		}
	})
	return ns
}

// testSubnet returns a random /24 in 198.18.0.0/15 (the benchmarking range) that is not
// directly connected to the host yet.
func testSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	for range 20 {
		p := netip.MustParsePrefix(fmt.Sprintf("198.%d.%d.0/24", 18+rand.IntN(2), rand.IntN(256)))
		routes, err := netlink.RouteGet(p.Addr().Next().AsSlice())
		if err == nil && len(routes) > 0 && routes[0].Gw == nil {
			continue
		}
		return p
	}
	t.Fatal("no free test subnet")
	return netip.Prefix{}
}

func host(p netip.Prefix, n byte) netip.Prefix {
	a := p.Addr().As4()
	a[3] = n
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// serve listens on addr inside ns and answers each connection with reply.
func serve(t *testing.T, ns *netns.Namespace, addr, reply string) {
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
		for range 10 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply)
			c.Close()
		}
	}()
}

// dialRead connects to addr from ns (the host if ns is nil) and reads until EOF.
func dialRead(ns *netns.Namespace, addr string) (string, error) {
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}
	var err error
	if ns == nil {
		err = dial()
	} else {
		err = ns.Do(dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestBridgeJoinsNamespaces(t *testing.T) {
	requireNetns(t)
	subnet := testSubnet(t)
	a, b := create(t), create(t)
	br, err := netns.NewBridge(netns.RandomName("mgb"), host(subnet, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := br.Delete(); err != nil {
			t.Errorf("delete bridge: %v", err)
		}
	})
	vethA, vethB := netns.RandomName("mgv"), netns.RandomName("mgv")
	if err := br.Attach(a, vethA, host(subnet, 10)); err != nil {
		t.Fatal(err)
	}
	if err := br.Attach(b, vethB, host(subnet, 11)); err != nil {
		t.Fatal(err)
	}
	bAddr := host(subnet, 11).Addr().String() + ":80"
	serve(t, b, bAddr, "from-b")

	for _, tc := range []struct {
		desc string
		from *netns.Namespace
	}{
		{"namespace to namespace", a},
		{"host to namespace", nil},
	} {
		got, err := dialRead(tc.from, bAddr)
		if err != nil || got != "from-b" {
			t.Fatalf("%s: got %q, %v", tc.desc, got, err)
		}
	}

	// The ip binary sees a normal named namespace.
	if _, err := exec.LookPath("ip"); err == nil {
		out, err := exec.Command("ip", "netns", "exec", a.Name, "ip", "-o", "addr", "show", "dev", vethA).CombinedOutput()
		if err != nil || !strings.Contains(string(out), host(subnet, 10).String()) {
			t.Fatalf("ip netns exec: %s, %v", out, err)
		}
	}

	// Deleting a namespace removes its veth's host end and its RunDir entry.
	if err := a.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(vethA); err == nil {
		t.Fatalf("host end %s still exists after Delete", vethA)
	}
	if _, err := os.Stat(a.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s still exists after Delete: %v", a.Path(), err)
	}
	if err := a.Do(func() error { return nil }); err == nil {
		t.Fatal("Do after Delete succeeded")
	}
}

func TestLinkReachesHost(t *testing.T) {
	requireNetns(t)
	subnet := testSubnet(t)
	ns := create(t)
	veth := netns.RandomName("mgv")
	hostAddr, nsAddr := netip.PrefixFrom(host(subnet, 1).Addr(), 30), netip.PrefixFrom(host(subnet, 2).Addr(), 30)
	if err := netns.Link(ns, veth, hostAddr, nsAddr); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", hostAddr.Addr().String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, _ = io.WriteString(c, "from-host")
			c.Close()
		}
	}()
	got, err := dialRead(ns, ln.Addr().String())
	if err != nil || got != "from-host" {
		t.Fatalf("namespace to host: got %q, %v", got, err)
	}
	// The default route points at the host end.
	var gw net.IP
	if err := ns.Do(func() error {
		routes, err := netlink.RouteGet(net.ParseIP("203.0.113.1"))
		if err != nil {
			return err
		}
		gw = routes[0].Gw
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !gw.Equal(hostAddr.Addr().AsSlice()) {
		t.Fatalf("default gateway %v, want %v", gw, hostAddr.Addr())
	}
	if err := ns.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(veth); err == nil {
		t.Fatalf("host end %s still exists after Delete", veth)
	}
}

func TestDoRestoresThreads(t *testing.T) {
	requireNetns(t)
	ns := create(t)
	host, err := vnetns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for i := range 50 {
		var inside vnetns.NsHandle
		if err := ns.Do(func() error {
			var err error
			inside, err = vnetns.Get()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		same := inside.Equal(host)
		inside.Close()
		if same {
			t.Fatalf("iteration %d: Do ran in the host namespace", i)
		}
	}
	// Every thread of the process is back in the host namespace.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // The thread exited meanwhile.
		}
		if got != want {
			t.Fatalf("thread %s is in %s, want %s", task.Name(), got, want)
		}
	}
}

func TestDoPropagates(t *testing.T) {
	requireNetns(t)
	ns := create(t)
	sentinel := errors.New("sentinel")
	if err := ns.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("Do returned %v, want the function's error", err)
	}
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
	}()
	_ = ns.Do(func() error { panic("boom") })
}

func TestCreateRejects(t *testing.T) {
	requireNetns(t)
	ns := create(t)
	for _, tc := range []struct {
		desc, name string
	}{
		{"empty", ""},
		{"slash", "a/b"},
		{"dot dot", ".."},
		{"existing", ns.Name},
	} {
		if got, err := netns.Create(tc.name); err == nil {
			got.Delete()
			t.Errorf("%s: Create(%q) succeeded", tc.desc, tc.name)
		}
	}
	// The failed Create of an existing name left the existing namespace intact.
	if err := ns.Do(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}
