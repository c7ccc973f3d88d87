package config

import (
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Fault-injection and mirroring defaults and bounds.
const (
	// maxFaultDelay bounds FaultDelay.Duration: a delay is a test of how callers cope with a slow
	// answer, and every delayed request holds a connection for this long.
	maxFaultDelay = time.Hour
	// defaultMirrorPercent is the default of MirrorPolicy.Percent.
	defaultMirrorPercent = 100
	// defaultMirrorMaxBodyBytes is the default of MirrorPolicy.MaxBodyBytes.
	defaultMirrorMaxBodyBytes = 64 << 10
	// maxMirrorBodyBytes bounds MirrorPolicy.MaxBodyBytes: every mirrored body is held in memory.
	maxMirrorBodyBytes = 16 << 20
	// defaultMirrorMaxInFlight is the default of MirrorPolicy.MaxInFlight.
	defaultMirrorMaxInFlight = 100
	// maxMirrorInFlight bounds MirrorPolicy.MaxInFlight.
	maxMirrorInFlight = 100000
)

// faultDefaults fills the defaults of a fault policy. A fault policy has none today: percentages,
// the delay and the abort status are required, and an unset header means every request.
func faultDefaults(*FaultPolicy) {}

// mirrorDefaults fills the defaults of a mirror policy: every request copied, bodies up to
// 65536 bytes, at most 100 copies in flight.
func mirrorDefaults(p *MirrorPolicy) {
	setDefault(&p.Percent, defaultMirrorPercent)
	setDefault(&p.MaxBodyBytes, defaultMirrorMaxBodyBytes)
	setDefault(&p.MaxInFlight, defaultMirrorMaxInFlight)
}

// checkFault checks a fault policy at s (a route's "fault").
func checkFault(s scope, p *FaultPolicy) {
	if p.Delay == nil && p.Abort == nil {
		s.errorf("set at least one of delay or abort")
	}
	if d := p.Delay; d != nil {
		ds := s.key("delay")
		checkFaultPercent(ds.key("percent"), d.Percent, "delayed")
		switch {
		case d.Duration == 0:
			ds.key("duration").errorf("required: how long each request is held back, above 0")
		case d.Duration < 0:
			ds.key("duration").errorf("must be above 0")
		case d.Duration > maxFaultDelay:
			ds.key("duration").errorf("%v is longer than the maximum of 1h", d.Duration)
		}
	}
	if a := p.Abort; a != nil {
		as := s.key("abort")
		checkFaultPercent(as.key("percent"), a.Percent, "aborted")
		exactlyOne(as, []string{"status", "grpcStatus"}, a.Status != 0, a.GRPCStatus != "")
		if a.Status != 0 && (a.Status < 200 || a.Status > 599) {
			as.key("status").errorf("%d is not a status in 200..599", a.Status)
		}
		if a.GRPCStatus != "" {
			if _, ok := GRPCCode(a.GRPCStatus); !ok {
				as.key("grpcStatus").errorf("%q is not a gRPC status code name (such as \"unavailable\") or number 1-16", a.GRPCStatus)
			}
		}
	}
	if p.Header != "" {
		checkFaultHeader(s.key("header"), p.Header)
	}
}

// checkFaultPercent checks the share of requests a fault applies to. Zero is a valid share, but
// a file that leaves the field out most likely forgot it.
func checkFaultPercent(s scope, percent float64, what string) {
	switch {
	case percent == 0 && s.v.c.Source.Lines != nil && !s.v.inFile(s.path):
		s.errorf("required: the percentage of requests %s, 0 to 100", what)
	case !(percent >= 0 && percent <= 100): // also NaN
		s.errorf("%s is not a percentage; expected a number from 0 to 100", strconv.FormatFloat(percent, 'g', -1, 64))
	}
}

// checkFaultHeader checks the name of the header that opts a request in to fault injection. It
// must be a field name that survives to the route: meshgate removes hop-by-hop fields and the
// client's Content-Length before routing ("TE: trailers" stays, for gRPC).
func checkFaultHeader(s scope, name string) {
	switch {
	case !isToken(name):
		s.errorf("%q is not a valid header name", name)
	case http1.IsHopByHop(name) && !httpmsg.EqualFold(name, "te"), httpmsg.EqualFold(name, "content-length"):
		s.errorf("%q is removed from requests before routing, so no request would carry it", name)
	}
}

// checkMirror checks a mirror policy at s (a route's "mirror"). It runs after serviceList, whose
// names the policy refers to.
func (v *validator) checkMirror(s scope, p *MirrorPolicy) {
	switch {
	case p.Service == "":
		s.key("service").errorf("required: the service that receives the copies")
	case !v.services[p.Service]:
		s.key("service").errorf("service %q is not defined", p.Service)
	}
	if !(p.Percent >= 0 && p.Percent <= 100) { // also NaN
		s.key("percent").errorf("%s is not a percentage; expected a number from 0 to 100", strconv.FormatFloat(p.Percent, 'g', -1, 64))
	}
	if p.MaxBodyBytes < 0 || p.MaxBodyBytes > maxMirrorBodyBytes {
		s.key("maxBodyBytes").errorf("must be between 0 and %d", maxMirrorBodyBytes)
	}
	if p.MaxInFlight < 1 || p.MaxInFlight > maxMirrorInFlight {
		s.key("maxInFlight").errorf("must be between 1 and %d", maxMirrorInFlight)
	}
}
