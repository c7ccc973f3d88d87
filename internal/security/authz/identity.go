package authz

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// scopeClaim is the claim whose string value is a space-separated list (RFC 6749 section 3.3).
const scopeClaim = "scope"

// consumerHolds reports whether the request was authenticated as one of the rule's consumers,
// or as any consumer when the rule lists "*".
func (r *rule) consumerHolds(in *Input) bool {
	id := in.Identity
	if id == nil || id.Consumer == "" {
		return false
	}
	return r.anyConsumer || slices.Contains(r.consumers, id.Consumer)
}

// groupsHold reports whether the consumer belongs to one of groups.
func groupsHold(groups []string, in *Input) bool {
	if in.Identity == nil {
		return false
	}
	for _, g := range in.Identity.Groups {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// claimCond is one compiled ClaimMatch.
type claimCond struct {
	name   string
	values []string
	scope  bool // a string value is a space-separated list of tokens
}

// compileClaim compiles a ClaimMatch.
func compileClaim(m *config.ClaimMatch) (claimCond, error) {
	if m.Name == "" {
		return claimCond{}, errors.New("name is required")
	}
	if len(m.Values) == 0 {
		return claimCond{}, fmt.Errorf("%q: values are required", m.Name)
	}
	c := claimCond{name: m.Name, values: m.Values, scope: m.Name == scopeClaim}
	if c.scope {
		for _, v := range m.Values {
			if v == "" || strings.Contains(v, " ") {
				return claimCond{}, fmt.Errorf("%q: value %q is not a single scope token", m.Name, v)
			}
		}
	}
	return c, nil
}

// holds reports whether the identity's claim matches one of the values.
func (c *claimCond) holds(id *proxy.Identity) bool {
	if id == nil {
		return false
	}
	switch v := id.Claims[c.name].(type) {
	case string:
		if c.scope {
			return c.anyToken(v)
		}
		return slices.Contains(c.values, v)
	case []string:
		for _, e := range v {
			if slices.Contains(c.values, e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && slices.Contains(c.values, s) {
				return true
			}
		}
	}
	return false
}

// anyToken reports whether one of the space-separated tokens of s is one of the values.
func (c *claimCond) anyToken(s string) bool {
	for tok := range strings.SplitSeq(s, " ") {
		if tok != "" && slices.Contains(c.values, tok) {
			return true
		}
	}
	return false
}
