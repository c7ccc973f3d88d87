package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// maxIfName is the longest interface name the kernel accepts (IFNAMSIZ - 1).
const maxIfName = 15

// Bridge is a Linux bridge in the host's network namespace that the veths of several namespaces
// attach to, so that those namespaces reach each other on one layer-2 segment without IP
// forwarding. Create it with NewBridge and remove it with Delete.
type Bridge struct {
	// Name is the bridge interface's name on the host.
	Name string
	// Addr is the host's address on the bridge (its prefix is the segment's subnet) and the
	// default gateway of attached namespaces. The zero Prefix gives the host no address, so
	// attached namespaces reach only each other.
	Addr netip.Prefix
}

// NewBridge creates the bridge NAME in the calling thread's network namespace (normally the
// host's), gives it addr unless addr is the zero Prefix, and sets it up. It never enables IP
// forwarding: packets from attached namespaces to other destinations stop at the host.
func NewBridge(name string, addr netip.Prefix) (*Bridge, error) {
	if err := validIfName(name); err != nil {
		return nil, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("netns: add bridge %s: %w", name, err)
	}
	b := &Bridge{Name: name, Addr: addr}
	if err := setUpWithAddr(nil, br, addr); err != nil {
		return nil, errors.Join(fmt.Errorf("netns: bridge %s: %w", name, err), b.Delete())
	}
	return b, nil
}

// Delete removes the bridge. Veths attached to it stay until their namespace is deleted.
func (b *Bridge) Delete() error {
	l, err := netlink.LinkByName(b.Name)
	if err != nil {
		return fmt.Errorf("netns: delete bridge %s: %w", b.Name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("netns: delete bridge %s: %w", b.Name, err)
	}
	return nil
}

// Attach connects ns to the bridge with a veth pair: the host end, named hostIfName, joins the
// bridge; the namespace end has the same name inside ns and gets nsAddr. When the bridge has an
// address of nsAddr's family, the namespace's default route for that family points to it
// (replacing an earlier default route). Deleting ns removes the pair.
func (b *Bridge) Attach(ns *Namespace, hostIfName string, nsAddr netip.Prefix) error {
	brLink, err := netlink.LinkByName(b.Name)
	if err != nil {
		return fmt.Errorf("netns: attach %s: bridge %s: %w", ns.Name, b.Name, err)
	}
	host, err := addVeth(ns, hostIfName, brLink.Attrs().Index)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("netns: attach %s: set %s up: %w", ns.Name, hostIfName, err)
	}
	var gw netip.Addr
	if b.Addr.IsValid() && b.Addr.Addr().Is4() == nsAddr.Addr().Is4() {
		gw = b.Addr.Addr()
	}
	return configureNSEnd(ns, hostIfName, nsAddr, gw)
}

// Link connects ns to the host point to point with a veth pair: the host end, named hostIfName,
// gets hostAddr; the namespace end has the same name inside ns and gets nsAddr; the namespace's
// default route for that family goes via hostAddr. Namespaces linked this way reach the host
// but not each other unless the host forwards IP (Link never enables forwarding); use a Bridge
// for that. Deleting ns removes the pair.
func Link(ns *Namespace, hostIfName string, hostAddr, nsAddr netip.Prefix) error {
	if hostAddr.Addr().Is4() != nsAddr.Addr().Is4() {
		return fmt.Errorf("netns: link %s: host address %s and namespace address %s differ in family", ns.Name, hostAddr, nsAddr)
	}
	host, err := addVeth(ns, hostIfName, 0)
	if err != nil {
		return err
	}
	if err := setUpWithAddr(nil, host, hostAddr); err != nil {
		return fmt.Errorf("netns: link %s: host end %s: %w", ns.Name, hostIfName, err)
	}
	return configureNSEnd(ns, hostIfName, nsAddr, hostAddr.Addr())
}

// addVeth creates a veth pair whose host end is name (joined to the bridge masterIndex unless it
// is 0) and whose peer, of the same name, is created directly inside ns.
func addVeth(ns *Namespace, name string, masterIndex int) (netlink.Link, error) {
	if err := validIfName(name); err != nil {
		return nil, err
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MasterIndex: masterIndex},
		PeerName:      name,
		PeerNamespace: netlink.NsFd(ns.handle),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("netns: add veth %s to %s: %w", name, ns.Name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("netns: find veth %s: %w", name, err)
	}
	return l, nil
}

// configureNSEnd gives the namespace end of a veth its address, sets it up and, if gw is valid,
// makes gw the namespace's default route.
func configureNSEnd(ns *Namespace, name string, addr netip.Prefix, gw netip.Addr) error {
	h, err := ns.netlinkHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("netns: %s: find %s: %w", ns.Name, name, err)
	}
	if err := setUpWithAddr(h, l, addr); err != nil {
		return fmt.Errorf("netns: %s: %s: %w", ns.Name, name, err)
	}
	if !gw.IsValid() {
		return nil
	}
	family, bits := unix.AF_INET, 32
	if gw.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	route := &netlink.Route{
		LinkIndex: l.Attrs().Index,
		Dst:       &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)},
		Gw:        gw.AsSlice(),
		Family:    family,
	}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("netns: %s: default route via %s: %w", ns.Name, gw, err)
	}
	return nil
}

// setUpWithAddr adds addr (unless it is the zero Prefix) to l and sets l up, through h or, if h
// is nil, in the calling thread's namespace. IPv6 addresses skip duplicate address detection so
// they are usable at once.
func setUpWithAddr(h *netlink.Handle, l netlink.Link, addr netip.Prefix) error {
	if h == nil {
		h = &netlink.Handle{}
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
		if addr.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil {
			return fmt.Errorf("add address %s: %w", addr, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

func validIfName(name string) error {
	if name == "" || len(name) > maxIfName {
		return fmt.Errorf("netns: interface name %q must have 1 to %d bytes", name, maxIfName)
	}
	return nil
}
