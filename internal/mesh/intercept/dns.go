package intercept

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNS defaults.
const (
	DefaultDNSTTL             = 30 * time.Second
	DefaultDNSUpstreamTimeout = 2 * time.Second
	DefaultDNSReadTimeout     = 2 * time.Second
	DefaultDNSWriteTimeout    = 2 * time.Second
	DefaultDNSMaxMessageSize  = 4096
)

// DNS is a small DNS responder for a workload: it answers A queries for <svc>.<ns>.<Zone>. from
// Lookup, and forwards other names to Upstreams (or refuses them when there are none). It serves
// UDP and TCP on one address. Set the fields, then call Start once and Shutdown once.
type DNS struct {
	// Zone is the mesh's DNS zone. Default "mesh".
	Zone string
	// Lookup returns the address of the service "<svc>.<ns>" (lower case, no trailing dot) and
	// whether it exists; VIPs.Lookup fits. Nil means no service exists.
	Lookup func(name string) (netip.Addr, bool)
	// Upstreams are resolvers ("host:port") that names outside Zone are forwarded to, tried in
	// order. Empty means such queries are answered REFUSED.
	Upstreams []string
	// UpstreamTimeout bounds one forwarded exchange with one upstream. Default 2s.
	UpstreamTimeout time.Duration
	// Dialer makes the connections to Upstreams. Inside an intercepted namespace it must carry
	// the sidecar's mark (MarkDialer), or forwarded queries are captured again. Default: a plain
	// net.Dialer.
	Dialer *net.Dialer
	// TTL is the time to live of answers and, through the SOA record, of negative answers.
	// Default 30s.
	TTL time.Duration
	// ReadTimeout bounds reading a query (and a TCP connection's idle time). Default 2s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing an answer. Default 2s.
	WriteTimeout time.Duration
	// MaxMessageSize is the largest UDP query read, in bytes; longer ones are truncated and
	// fail to parse. TCP messages are bounded by the protocol's 64 KiB. Default 4096.
	MaxMessageSize int
	// Logger receives debug logs of failed forwards. Default: discard.
	Logger *slog.Logger

	mu    sync.Mutex
	addr  netip.AddrPort
	udp   *dns.Server
	tcp   *dns.Server
	wg    sync.WaitGroup
	state int // 0 new, 1 started, 2 shut down
}

// Start binds UDP and TCP on addr ("host:port"; port 0 picks one free for both) and serves in
// the background until Shutdown. Binding happens in the calling thread's network namespace.
func (d *DNS) Start(addr string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != 0 {
		return errors.New("intercept: dns: already started")
	}
	zone := dns.CanonicalName(d.zone())
	if zone == "." {
		return errors.New("intercept: dns: zone must not be the root")
	}
	pc, ln, err := listenBoth(addr)
	if err != nil {
		return err
	}
	h := &dnsHandler{d: d, zone: zone, log: d.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	idle := d.readTimeout()
	d.udp = &dns.Server{PacketConn: pc, Handler: h, UDPSize: d.maxMessageSize(), ReadTimeout: d.readTimeout(), WriteTimeout: d.writeTimeout()}
	d.tcp = &dns.Server{Listener: ln, Handler: h, ReadTimeout: d.readTimeout(), WriteTimeout: d.writeTimeout(),
		IdleTimeout: func() time.Duration { return idle }, MaxTCPQueries: 128}
	d.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, srv := range []*dns.Server{d.udp, d.tcp} {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
		select {
		case <-started:
		case err := <-failed:
			pc.Close()
			ln.Close()
			d.wg.Wait()
			return fmt.Errorf("intercept: dns: serve: %w", err)
		}
	}
	d.state = 1
	return nil
}

// listenBoth binds a UDP socket and a TCP listener on the same address and port.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("intercept: dns: address %q: %w", addr, err)
	}
	const tries = 10
	for i := 0; ; i++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("intercept: dns: listen udp: %w", err)
		}
		udpPort := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(udpPort)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if port != "0" || i == tries-1 {
			return nil, nil, fmt.Errorf("intercept: dns: listen tcp: %w", err)
		}
	}
}

// Addr returns the address the responder serves on, valid after Start.
func (d *DNS) Addr() netip.AddrPort {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// Shutdown stops both servers, waiting for in-flight queries until ctx is done.
func (d *DNS) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != 1 {
		d.state = 2
		return nil
	}
	d.state = 2
	errs := []error{d.udp.ShutdownContext(ctx), d.tcp.ShutdownContext(ctx)}
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("intercept: dns: shutdown: %w", err)
	}
	return nil
}

func (d *DNS) zone() string {
	if d.Zone == "" {
		return "mesh"
	}
	return d.Zone
}

func (d *DNS) ttl() uint32 {
	if d.TTL <= 0 {
		return uint32(DefaultDNSTTL / time.Second)
	}
	return uint32(d.TTL / time.Second)
}

func (d *DNS) upstreamTimeout() time.Duration {
	return orDefault(d.UpstreamTimeout, DefaultDNSUpstreamTimeout)
}
func (d *DNS) readTimeout() time.Duration  { return orDefault(d.ReadTimeout, DefaultDNSReadTimeout) }
func (d *DNS) writeTimeout() time.Duration { return orDefault(d.WriteTimeout, DefaultDNSWriteTimeout) }

func (d *DNS) maxMessageSize() int {
	if d.MaxMessageSize <= 0 {
		return DefaultDNSMaxMessageSize
	}
	return d.MaxMessageSize
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}
