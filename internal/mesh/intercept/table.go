package intercept

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// TableName is the name of the inet table Install owns.
const TableName = "meshgate"

// meshgateTable returns the meshgate table's description.
func meshgateTable() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

const (
	outputChain     = "output"
	preroutingChain = "prerouting"
)

// Install validates r and puts the meshgate table into the current network namespace (the one
// of the calling OS thread, see netns.Namespace.Do), replacing any earlier meshgate table. The
// removal of the old table and the creation of the new one are one netlink batch: the kernel
// applies both or neither, so no packet sees a half-installed rule set.
func Install(r Rules) error {
	if err := r.Validate(); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("intercept: nftables: %w", err)
	}
	// Adding then deleting makes the delete succeed whether or not the table exists.
	table := meshgateTable()
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	if r.OutboundPort != 0 || r.DNSPort != 0 {
		ch := c.AddChain(&nftables.Chain{
			Name: outputChain, Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest,
		})
		for _, e := range outputRules(r) {
			c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: e})
		}
	}
	if r.InboundPort != 0 {
		ch := c.AddChain(&nftables.Chain{
			Name: preroutingChain, Table: table, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest,
		})
		for _, e := range preroutingRules(r) {
			c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: e})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("intercept: install table inet %s (needs nf_tables with inet nat and redirect): %w", TableName, err)
	}
	return nil
}

// Remove deletes the meshgate table from the current network namespace. Removing when none is
// installed is not an error.
func Remove() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("intercept: nftables: %w", err)
	}
	table := meshgateTable()
	c.AddTable(table)
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("intercept: remove table inet %s: %w", TableName, err)
	}
	return nil
}

// Installed reports whether the meshgate table exists in the current network namespace.
func Installed() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("intercept: nftables: %w", err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("intercept: list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			return true, nil
		}
	}
	return false, nil
}

// outputRules captures the app's outbound TCP and DNS in the nat output hook, in order:
// loopback, the proxy's own packets, DNS, excluded destinations, then all other TCP.
func outputRules(r Rules) [][]expr.Any {
	rules := [][]expr.Any{
		concat(ifname(unix.NFT_META_OIFNAME, "lo"), ret()),
		concat(daddrIn(netip.MustParsePrefix("127.0.0.0/8")), ret()),
		concat(daddrIn(netip.MustParsePrefix("::1/128")), ret()),
	}
	rules = append(rules, proxyExemptions(r)...)
	if r.DNSPort != 0 {
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			rules = append(rules, concat(l4proto(proto), dport(53), redirect(r.DNSPort)))
		}
	}
	if r.OutboundPort != 0 {
		for _, p := range r.ExcludeOutboundCIDRs {
			rules = append(rules, concat(daddrIn(p.Masked()), ret()))
		}
		rules = append(rules, concat(l4proto(unix.IPPROTO_TCP), redirect(r.OutboundPort)))
	}
	return rules
}

// proxyExemptions returns the rules that let the sidecar's own packets through.
func proxyExemptions(r Rules) [][]expr.Any {
	var rules [][]expr.Any
	if r.ProxyUID != nil {
		rules = append(rules, concat(metaEq(expr.MetaKeySKUID, u32(*r.ProxyUID)), ret()))
	}
	if r.ProxyMark != 0 {
		rules = append(rules, concat(metaEq(expr.MetaKeyMARK, u32(r.ProxyMark)), ret()))
	}
	return rules
}

// preroutingRules captures inbound TCP from other hosts in the nat prerouting hook.
func preroutingRules(r Rules) [][]expr.Any {
	rules := [][]expr.Any{concat(ifname(unix.NFT_META_IIFNAME, "lo"), ret())}
	if len(r.InboundPorts) > 0 {
		for _, p := range r.InboundPorts {
			rules = append(rules, concat(l4proto(unix.IPPROTO_TCP), dport(p), redirect(r.InboundPort)))
		}
		return rules
	}
	for _, p := range r.ExcludeInboundPorts {
		rules = append(rules, concat(l4proto(unix.IPPROTO_TCP), dport(p), ret()))
	}
	return append(rules, concat(l4proto(unix.IPPROTO_TCP), redirect(r.InboundPort)))
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func ret() []expr.Any { return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}} }

func metaEq(key expr.MetaKey, data []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
	}
}

// ifname matches an interface name exactly (the name plus its terminating NUL).
func ifname(key expr.MetaKey, name string) []expr.Any {
	return metaEq(key, append([]byte(name), 0))
}

func l4proto(proto byte) []expr.Any { return metaEq(expr.MetaKeyL4PROTO, []byte{proto}) }

// dport matches the TCP or UDP destination port; it must follow l4proto.
func dport(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(port)},
	}
}

// daddrIn matches packets of p's family whose destination address is inside p.
func daddrIn(p netip.Prefix) []expr.Any {
	family, offset := byte(unix.NFPROTO_IPV4), uint32(16)
	if p.Addr().Is6() {
		family, offset = unix.NFPROTO_IPV6, 24
	}
	addr := p.Addr().AsSlice()
	out := concat(metaEq(expr.MetaKeyNFPROTO, []byte{family}), []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(addr))},
	})
	if p.Bits() < p.Addr().BitLen() {
		mask := netip.PrefixFrom(p.Addr(), p.Bits())
		out = append(out, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: uint32(len(addr)),
			Mask: prefixMask(mask), Xor: make([]byte, len(addr)),
		})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr})
}

// prefixMask returns the network mask of p as bytes.
func prefixMask(p netip.Prefix) []byte {
	m := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// redirect sends the packet to port on the loopback (output) or incoming interface's
// (prerouting) address.
func redirect(port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: be16(port)},
		&expr.Redir{RegisterProtoMin: 1},
	}
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// u32 encodes v in host byte order, as the kernel stores meta mark and skuid.
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
