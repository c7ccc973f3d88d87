package authz

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
)

// DefaultRule is the Decision.Rule of a decision taken by the policy's default, when no rule
// matched.
const DefaultRule = "default"

// Input is what a decision looks at.
type Input struct {
	// Method is the request method, for example "GET".
	Method string
	// Path is the normalised path the router matched, never the raw one.
	Path string
	// Host is the request's authority as received (the Host header or :authority).
	Host string
	// Header holds the request header fields in arrival order.
	Header httpmsg.Header
	// SourceIP is the client address, after trusted-proxy resolution.
	SourceIP netip.Addr
	// Identity is who authentication found the caller to be; nil for anonymous requests.
	Identity *proxy.Identity
	// PeerID is the mesh peer's workload identity (a SPIFFE ID) proved by mutual TLS, or "".
	PeerID string
}

// Decision is the outcome of a policy for one request.
type Decision struct {
	// Allow reports whether the request may proceed.
	Allow bool
	// Rule names the rule that decided, or is DefaultRule when the policy's default did.
	Rule string
}

// Policy is a compiled authorization policy. It is immutable and safe for concurrent use.
type Policy struct {
	// deny and allow hold the deny and allow rules, each in file order.
	deny, allow []rule
	// allowByDefault is the decision when no rule matches.
	allowByDefault bool
}

// DefaultDeny returns a Policy without rules that denies every request with Rule DefaultRule, for
// routes without a policy on listeners with defaultDeny.
func DefaultDeny() *Policy {
	return &Policy{}
}

// Compile checks and compiles a policy. An error names the offending rule by name and index and
// says what is wrong with it; for a CEL expression it carries the compiler's message. Compile
// refuses a rule without conditions, an unknown action or default, and duplicate rule names.
func Compile(p *config.AuthzPolicy) (*Policy, error) {
	if p == nil {
		return nil, errors.New("authz: no policy")
	}
	pol := &Policy{}
	switch p.Default {
	case "", config.AuthzDeny:
	case config.AuthzAllow:
		pol.allowByDefault = true
	default:
		return nil, fmt.Errorf("authz: default %q: want %q or %q", p.Default, config.AuthzAllow, config.AuthzDeny)
	}
	seen := make(map[string]int, len(p.Rules))
	for i := range p.Rules {
		cr := &p.Rules[i]
		r, err := compileRule(cr)
		if err == nil {
			if j, dup := seen[cr.Name]; dup {
				err = fmt.Errorf("name already used by rule %d", j)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("authz: rule %q (index %d): %w", cr.Name, i, err)
		}
		seen[cr.Name] = i
		if r.deny {
			pol.deny = append(pol.deny, r)
		} else {
			pol.allow = append(pol.allow, r)
		}
	}
	return pol, nil
}

// Decide returns the policy's decision for the request in, which must not be nil. A nil Policy
// denies. Decide does not allocate unless it evaluates a CEL expression or the path has segment
// parameters (";").
func (p *Policy) Decide(in *Input) Decision {
	if p == nil {
		return Decision{Rule: DefaultRule}
	}
	var vars *celVars // built on first use by a CEL expression
	bare := pathnorm.WithoutParams(in.Path)
	for i := range p.deny {
		if p.deny[i].matches(in, bare, &vars) {
			return Decision{Rule: p.deny[i].name}
		}
	}
	for i := range p.allow {
		if p.allow[i].matches(in, bare, &vars) {
			return Decision{Allow: true, Rule: p.allow[i].name}
		}
	}
	return Decision{Allow: p.allowByDefault, Rule: DefaultRule}
}
