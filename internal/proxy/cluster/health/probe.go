package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
)

// UserAgent is the User-Agent of HTTP probes, so that endpoints can tell probes from traffic.
const UserAgent = "meshgate-health"

// maxProbeBody is how much of a probe response body is read before the connection is closed.
const maxProbeBody = 4 << 10

// maxProbeHeaderBytes bounds a probe response head.
const maxProbeHeaderBytes = 16 << 10

// httpProber sends GET Path to the endpoint on a fresh connection and passes on a 2xx status, or
// on one of the expected statuses when those are configured. Redirects are not followed.
type httpProber struct {
	path      string
	host      string
	expected  []int
	transport *http.Transport
}

func newHTTPProber(hc *config.HTTPHealthCheck, protocol string, timeout time.Duration) (*httpProber, error) {
	path := hc.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("health: http path %q does not start with /", path)
	}
	if _, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil); err != nil {
		return nil, fmt.Errorf("health: http path %q: %w", path, err)
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: -1}
	t := &http.Transport{
		Proxy:                  nil, // probes go to the endpoint itself, never through an environment proxy
		DialContext:            dialer.DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxProbeHeaderBytes,
	}
	if protocol == config.UpstreamHTTP2 || protocol == config.UpstreamGRPC {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return &httpProber{path: path, host: hc.Host, expected: slices.Clone(hc.ExpectedStatuses), transport: t}, nil
}

func (p *httpProber) probe(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+p.path, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	req.Host = addr
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Close = true
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxProbeBody)
	_ = resp.Body.Close()
	if !p.passes(resp.StatusCode) {
		return fmt.Errorf("health: unexpected status %d", resp.StatusCode)
	}
	return nil
}

func (p *httpProber) passes(status int) bool {
	if len(p.expected) > 0 {
		return slices.Contains(p.expected, status)
	}
	return status >= 200 && status < 300
}

func (p *httpProber) close() { p.transport.CloseIdleConnections() }

// tcpProber passes when a TCP connection to the endpoint opens within the timeout.
type tcpProber struct {
	dialer net.Dialer
}

func newTCPProber(timeout time.Duration) *tcpProber {
	return &tcpProber{dialer: net.Dialer{Timeout: timeout, KeepAlive: -1}}
}

func (p *tcpProber) probe(ctx context.Context, addr string) error {
	conn, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	_ = conn.Close()
	return nil
}

func (p *tcpProber) close() {}
