package authz

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/cel-go/cel"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/netaddr"
)

// rule is one compiled AuthzRule. Unset conditions are empty.
type rule struct {
	name        string
	deny        bool
	methods     []string
	paths       []pathCond
	anyConsumer bool     // Consumers lists "*"
	consumers   []string // named consumers, without "*"
	groups      []string
	cidrs       []netip.Prefix
	headers     []headerCond
	claims      []claimCond
	peer        peerCond    // mesh identities and namespaces
	program     cel.Program // nil without a CEL expression
}

// compileRule compiles one rule; errors do not repeat the rule's name.
func compileRule(cr *config.AuthzRule) (rule, error) {
	r := rule{name: cr.Name}
	if cr.Name == "" {
		return r, errors.New("name is required")
	}
	switch cr.Action {
	case config.AuthzAllow:
	case config.AuthzDeny:
		r.deny = true
	default:
		return r, fmt.Errorf("action %q: want %q or %q", cr.Action, config.AuthzAllow, config.AuthzDeny)
	}
	if len(cr.Consumers) == 0 && len(cr.Groups) == 0 && len(cr.Claims) == 0 && len(cr.Methods) == 0 &&
		len(cr.Paths) == 0 && len(cr.Headers) == 0 && len(cr.SourceCIDRs) == 0 && cr.CEL == "" &&
		len(cr.Identities) == 0 && len(cr.Namespaces) == 0 {
		return r, errors.New("no conditions: a rule must set at least one")
	}
	for _, m := range cr.Methods {
		if m == "" {
			return r, errors.New("empty method")
		}
	}
	r.methods = cr.Methods
	for _, c := range cr.Consumers {
		switch c {
		case "":
			return r, errors.New("empty consumer name")
		case "*":
			r.anyConsumer = true
		default:
			r.consumers = append(r.consumers, c)
		}
	}
	for _, g := range cr.Groups {
		if g == "" {
			return r, errors.New("empty group name")
		}
	}
	r.groups = cr.Groups
	for j := range cr.Paths {
		pc, err := compilePath(&cr.Paths[j])
		if err != nil {
			return r, fmt.Errorf("path %d: %w", j, err)
		}
		r.paths = append(r.paths, pc)
	}
	for j := range cr.Headers {
		hc, err := compileHeader(&cr.Headers[j])
		if err != nil {
			return r, fmt.Errorf("header %d: %w", j, err)
		}
		r.headers = append(r.headers, hc)
	}
	for _, s := range cr.SourceCIDRs {
		p, err := netaddr.ParsePrefix(s)
		if err != nil {
			return r, fmt.Errorf("source CIDR %q: %w", s, err)
		}
		r.cidrs = append(r.cidrs, p)
	}
	for j := range cr.Claims {
		cc, err := compileClaim(&cr.Claims[j])
		if err != nil {
			return r, fmt.Errorf("claim %d: %w", j, err)
		}
		r.claims = append(r.claims, cc)
	}
	peer, err := compilePeer(cr.Identities, cr.Namespaces)
	if err != nil {
		return r, err
	}
	r.peer = peer
	if cr.CEL != "" {
		prg, err := compileCEL(cr.CEL)
		if err != nil {
			return r, err
		}
		r.program = prg
	}
	return r, nil
}

// matches reports whether every condition the rule sets holds, testing the cheapest first. bare
// is in.Path without segment parameters (pathnorm.WithoutParams). vars holds the CEL variables, built on
// first use and shared by the rules of one decision.
func (r *rule) matches(in *Input, bare string, vars **celVars) bool {
	if len(r.methods) > 0 && !slices.Contains(r.methods, in.Method) {
		return false
	}
	if len(r.paths) > 0 && !anyPath(r.paths, in.Path, bare) {
		return false
	}
	if (r.anyConsumer || len(r.consumers) > 0) && !r.consumerHolds(in) {
		return false
	}
	if len(r.groups) > 0 && !groupsHold(r.groups, in) {
		return false
	}
	if len(r.cidrs) > 0 && !sourceHolds(r.cidrs, in.SourceIP) {
		return false
	}
	if r.peer.set() && !r.peer.holds(in.PeerID) {
		return false
	}
	for i := range r.headers {
		if !r.headers[i].holds(in.Header) {
			return false
		}
	}
	for i := range r.claims {
		if !r.claims[i].holds(in.Identity) {
			return false
		}
	}
	if r.program != nil {
		if *vars == nil {
			*vars = &celVars{in: in}
		}
		return r.celHolds(*vars)
	}
	return true
}
