package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/netaddr"
)

// TracingTarget is a parsed Tracing.Endpoint.
type TracingTarget struct {
	// HostPort is the collector's host:port.
	HostPort string
	// Scheme is "http" or "https" when the endpoint was a URL, "" for host:port.
	Scheme string
	// Path is the URL path of an OTLP/HTTP endpoint given as a URL, "" otherwise.
	Path string
}

// ParseTracingEndpoint parses a Tracing.Endpoint: "host:port" or an http(s) URL with a host and
// port.
func ParseTracingEndpoint(endpoint string) (TracingTarget, error) {
	if endpoint == "" {
		return TracingTarget{}, errors.New("required: the collector's host:port or URL")
	}
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			return TracingTarget{}, fmt.Errorf("%q is not a URL: %w", endpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return TracingTarget{}, fmt.Errorf("%q: the scheme must be http or https", endpoint)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return TracingTarget{}, fmt.Errorf("%q: a collector URL has no user, query or fragment", endpoint)
		}
		hp := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			hp = net.JoinHostPort(u.Hostname(), port)
		}
		if u.Hostname() == "" {
			return TracingTarget{}, fmt.Errorf("%q has no host", endpoint)
		}
		return TracingTarget{HostPort: hp, Scheme: u.Scheme, Path: u.Path}, checkCollectorAddress(endpoint, hp)
	}
	return TracingTarget{HostPort: endpoint}, checkCollectorAddress(endpoint, endpoint)
}

// checkCollectorAddress checks that hp is host:port with a port in 1..65535.
func checkCollectorAddress(endpoint, hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil || host == "" {
		return fmt.Errorf("%q is neither host:port nor an http(s) URL", endpoint)
	}
	if _, ok := parsePort(port, 1); !ok {
		return fmt.Errorf("%q: the port must be a number in 1..65535", endpoint)
	}
	return nil
}

// Loopback reports whether the target is an address on this machine only.
func (t TracingTarget) Loopback() bool { return netaddr.IsLoopbackAddr(t.HostPort) }

// telemetryDefaults fills the defaults of the telemetry block.
func telemetryDefaults(t *Telemetry) {
	if t == nil || t.Tracing == nil {
		return
	}
	tr := t.Tracing
	setDefault(&tr.Protocol, TracingGRPC)
	if tr.SampleRate == nil {
		r := 0.01
		tr.SampleRate = &r
	}
	setDefault(&tr.Timeout, 10*time.Second)
	if tr.Insecure == nil {
		if target, err := ParseTracingEndpoint(tr.Endpoint); err == nil {
			insecure := target.Scheme == "http" || target.Scheme == "" && target.Loopback()
			tr.Insecure = &insecure
		}
	}
}

// telemetry checks the telemetry block.
func (v *validator) telemetry() {
	t := v.c.Telemetry
	if t == nil || t.Tracing == nil {
		return
	}
	s := v.object("telemetry", "").key("tracing")
	tr := t.Tracing
	target, err := ParseTracingEndpoint(tr.Endpoint)
	if err != nil {
		s.key("endpoint").errorf("%s", err.Error())
	}
	switch tr.Protocol {
	case TracingGRPC:
		if err == nil && target.Path != "" && target.Path != "/" {
			s.key("endpoint").errorf("%q: an OTLP/gRPC endpoint has no path", tr.Endpoint)
		}
	case TracingHTTP:
	default:
		s.key("protocol").errorf(`%q must be "grpc" or "http"`, tr.Protocol)
	}
	if tr.SampleRate == nil || !(*tr.SampleRate >= 0 && *tr.SampleRate <= 1) {
		s.key("sampleRate").errorf("must be a number from 0 to 1")
	}
	if tr.Timeout <= 0 {
		s.key("timeout").errorf("must be above 0")
	}
	if tr.Insecure == nil {
		if err == nil {
			s.key("insecure").errorf("required")
		}
	} else if err == nil && target.Scheme != "" && *tr.Insecure != (target.Scheme == "http") {
		s.key("insecure").errorf("%v contradicts the endpoint's scheme %q", *tr.Insecure, target.Scheme)
	}
}
