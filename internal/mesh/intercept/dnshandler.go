package intercept

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// dnsHandler answers one query for a DNS responder.
type dnsHandler struct {
	d    *DNS
	zone string
	log  *slog.Logger
}

// ServeDNS implements dns.Handler.
func (h *dnsHandler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := h.answer(w, req)
	if resp == nil {
		return
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	}
	_ = w.WriteMsg(resp)
}

func (h *dnsHandler) answer(w dns.ResponseWriter, req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg)
	switch {
	case req.Response:
		return nil // Never answer answers.
	case req.Opcode != dns.OpcodeQuery:
		return resp.SetRcode(req, dns.RcodeNotImplemented)
	case len(req.Question) != 1:
		return resp.SetRcode(req, dns.RcodeFormatError)
	}
	q := req.Question[0]
	key, kind := parseName(q.Name, h.zone)
	if kind == nameOutside {
		return h.forward(w, req)
	}
	resp.SetReply(req)
	resp.Authoritative = true
	resp.RecursionAvailable = len(h.d.Upstreams) > 0
	switch kind {
	case nameApex:
		if q.Qtype == dns.TypeSOA && q.Qclass == dns.ClassINET {
			resp.Answer = append(resp.Answer, h.soa())
			return resp
		}
	case nameService:
		addr := h.lookup(key)
		if !addr.IsValid() {
			resp.Rcode = dns.RcodeNameError
		} else if q.Qclass == dns.ClassINET && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY) && addr.Is4() {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: h.d.ttl()},
				A:   addr.AsSlice(),
			})
			return resp
		}
	case nameInvalid:
		resp.Rcode = dns.RcodeNameError
	}
	// NXDOMAIN, or NODATA for a name that exists without the asked type: the SOA says how long
	// to cache that.
	resp.Ns = append(resp.Ns, h.soa())
	return resp
}

func (h *dnsHandler) lookup(key string) (addr netip.Addr) {
	if h.d.Lookup == nil {
		return addr
	}
	a, ok := h.d.Lookup(key)
	if !ok {
		return addr
	}
	return a.Unmap()
}

func (h *dnsHandler) soa() dns.RR {
	ttl := h.d.ttl()
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: h.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "ns." + h.zone,
		Mbox:    "hostmaster." + h.zone,
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

// forward relays a query for a name outside the zone to the upstreams in order, over the same
// transport it arrived on, and returns the first answer; REFUSED without upstreams, SERVFAIL
// when none answers.
func (h *dnsHandler) forward(w dns.ResponseWriter, req *dns.Msg) *dns.Msg {
	if len(h.d.Upstreams) == 0 {
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	}
	network := "udp"
	if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
		network = "tcp"
	}
	c := &dns.Client{Net: network, Timeout: h.d.upstreamTimeout(), Dialer: h.d.Dialer, UDPSize: dns.DefaultMsgSize}
	for _, up := range h.d.Upstreams {
		ctx, cancel := context.WithTimeout(context.Background(), h.d.upstreamTimeout())
		resp, _, err := c.ExchangeContext(ctx, req.Copy(), up)
		cancel()
		if err == nil && resp != nil {
			resp.Id = req.Id
			return resp
		}
		h.log.Debug("dns forward failed", "upstream", up, "name", req.Question[0].Name, "err", err)
	}
	return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
}
