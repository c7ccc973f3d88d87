package demo

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/meshgate/meshgate/internal/mesh/netns"
)

// topology is the local mesh's network in netns mode: a bridge on the host and one namespace per
// workload attached to it, each with a resolv.conf whose nameserver is the host's bridge
// address (so that the sidecar's DNS capture answers SERVICE.NAMESPACE.mesh).
type topology struct {
	bridge *netns.Bridge
	host   netip.Addr
	nss    []*netns.Namespace
	names  []string
	addrs  []netip.Addr
}

// freeSubnet returns the first 10.77.X.0/24 that no interface of the host has an address in,
// so that two local meshes (or a network that uses 10.77.0.0/24) do not collide.
func freeSubnet() (netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	for x := 0; x < 256; x++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 77, byte(x), 0}), 24)
		taken := false
		for _, a := range addrs {
			if ap, err := netip.ParsePrefix(a.String()); err == nil && (p.Contains(ap.Addr()) || ap.Contains(p.Addr())) {
				taken = true
				break
			}
		}
		if !taken {
			return p, nil
		}
	}
	return netip.Prefix{}, errors.New("up: every 10.77.X.0/24 is in use on this host")
}

// newTopology creates the bridge and n namespaces.
func newTopology(n int) (*topology, error) {
	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	host := subnet.Addr().Next()
	b, err := netns.NewBridge(netns.RandomName("mgb"), netip.PrefixFrom(host, subnet.Bits()))
	if err != nil {
		return nil, err
	}
	t := &topology{bridge: b, host: host}
	addr := host
	for range n {
		addr = addr.Next()
		ns, err := netns.Create(netns.RandomName("meshgate-"))
		if err != nil {
			t.close(slog.Default())
			return nil, err
		}
		t.nss = append(t.nss, ns)
		if err := b.Attach(ns, netns.RandomName("mgv"), netip.PrefixFrom(addr, subnet.Bits())); err != nil {
			t.close(slog.Default())
			return nil, err
		}
		etc := filepath.Join("/etc/netns", ns.Name)
		if err := os.MkdirAll(etc, 0o755); err != nil {
			t.close(slog.Default())
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver "+host.String()+"\n"), 0o644); err != nil {
			t.close(slog.Default())
			return nil, err
		}
		t.names = append(t.names, ns.Name)
		t.addrs = append(t.addrs, addr)
	}
	return t, nil
}

// close deletes the namespaces, their resolv.conf files and the bridge.
func (t *topology) close(log *slog.Logger) {
	for _, ns := range t.nss {
		if err := ns.Delete(); err != nil {
			log.Warn("up: deleting a network namespace", "namespace", ns.Name, "error", err)
		}
		_ = os.RemoveAll(filepath.Join("/etc/netns", ns.Name))
	}
	if err := t.bridge.Delete(); err != nil {
		log.Warn("up: deleting the bridge", "bridge", t.bridge.Name, "error", err)
	}
}
