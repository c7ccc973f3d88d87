package intercept

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// VIPRange returns the block virtual service addresses come from, 240.240.0.0/16 (part of the
// reserved 240.0.0.0/4, which no real host uses).
func VIPRange() netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{240, 240, 0, 0}), 16) }

// vipSlots is the number of usable addresses in VIPRange(): 256 third octets times 254 fourth
// octets (never .0 or .255).
const vipSlots = 256 * 254

// VIPs assigns one virtual IPv4 address from VIPRange to each service name. An assignment never
// changes while its name stays in the set. For a given set of names, a fresh VIPs assigns the
// same addresses on every run: each name hashes to a slot, and names are placed in sorted order,
// probing to the next free slot on a collision. Lookups are lock-free and safe for concurrent
// use with Update. The zero value is empty and ready to use.
type VIPs struct {
	mu   sync.Mutex // serialises Update
	snap atomic.Pointer[vipSnapshot]
}

type vipSnapshot struct {
	byName map[string]netip.Addr
	byAddr map[netip.Addr]string
}

// Update makes names the full set of services: names no longer present lose their address
// (which may later go to another name), new names get one, and the others keep theirs. It fails,
// changing nothing, if the set has more names than VIPRange has addresses.
func (v *VIPs) Update(names []string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	if len(sorted) > vipSlots {
		return fmt.Errorf("intercept: %d services exceed the %d virtual addresses of %s", len(sorted), vipSlots, VIPRange())
	}
	old := v.snap.Load()
	next := &vipSnapshot{byName: make(map[string]netip.Addr, len(sorted)), byAddr: make(map[netip.Addr]string, len(sorted))}
	var fresh []string
	for _, name := range sorted {
		if a, ok := old.lookup(name); ok {
			next.byName[name], next.byAddr[a] = a, name
		} else {
			fresh = append(fresh, name)
		}
	}
	for _, name := range fresh {
		slot := vipHash(name)
		for {
			a := vipAddr(slot)
			if _, taken := next.byAddr[a]; !taken {
				next.byName[name], next.byAddr[a] = a, name
				break
			}
			slot = (slot + 1) % vipSlots
		}
	}
	v.snap.Store(next)
	return nil
}

// Addr returns name's virtual address, or the zero Addr if name is not in the set.
func (v *VIPs) Addr(name string) netip.Addr {
	a, _ := v.Lookup(name)
	return a
}

// Lookup returns name's virtual address and whether name is in the set. Its signature fits
// DNS.Lookup.
func (v *VIPs) Lookup(name string) (netip.Addr, bool) {
	return v.snap.Load().lookup(name)
}

// Service returns the name whose virtual address is addr (an IPv4-mapped IPv6 address is
// accepted), and whether there is one.
func (v *VIPs) Service(addr netip.Addr) (string, bool) {
	s := v.snap.Load()
	if s == nil {
		return "", false
	}
	name, ok := s.byAddr[addr.Unmap()]
	return name, ok
}

// Len returns the number of names in the set.
func (v *VIPs) Len() int {
	if s := v.snap.Load(); s != nil {
		return len(s.byName)
	}
	return 0
}

func (s *vipSnapshot) lookup(name string) (netip.Addr, bool) {
	if s == nil {
		return netip.Addr{}, false
	}
	a, ok := s.byName[name]
	return a, ok
}

// vipHash maps a name to its preferred slot.
func vipHash(name string) uint32 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return uint32(h.Sum64() % vipSlots)
}

// vipAddr maps a slot in [0, vipSlots) to its address: 240.240.slot/254.(slot%254 + 1).
func vipAddr(slot uint32) netip.Addr {
	base := VIPRange().Addr().As4()
	return netip.AddrFrom4([4]byte{base[0], base[1], byte(slot / 254), byte(slot%254 + 1)})
}
