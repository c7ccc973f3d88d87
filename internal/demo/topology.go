package demo

import (
	"log/slog"
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

// newTopology creates the bridge and n namespaces.
func newTopology(n int) (*topology, error) {
	host := bridgeNet.Addr().Next()
	b, err := netns.NewBridge(netns.RandomName("mgb"), netip.PrefixFrom(host, bridgeNet.Bits()))
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
		if err := b.Attach(ns, netns.RandomName("mgv"), netip.PrefixFrom(addr, bridgeNet.Bits())); err != nil {
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
