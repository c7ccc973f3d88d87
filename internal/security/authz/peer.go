package authz

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// peerCond matches a mesh peer's workload identity: exact IDs, ID prefixes ("…/*") and
// namespaces. An anonymous peer (no identity) never matches.
type peerCond struct {
	ids        []string
	prefixes   []string // each ends in "/"
	namespaces []string
}

// set reports whether the rule has a peer condition.
func (c *peerCond) set() bool {
	return len(c.ids) > 0 || len(c.prefixes) > 0 || len(c.namespaces) > 0
}

// compilePeer compiles a rule's identities and namespaces.
func compilePeer(ids, namespaces []string) (peerCond, error) {
	var c peerCond
	for _, p := range ids {
		if prefix, ok := strings.CutSuffix(p, "/*"); ok {
			if _, err := spiffeid.FromString(prefix); err != nil {
				return c, fmt.Errorf("identity %q: %w", p, err)
			}
			c.prefixes = append(c.prefixes, prefix+"/")
			continue
		}
		if _, err := spiffeid.FromString(p); err != nil {
			return c, fmt.Errorf("identity %q: %w", p, err)
		}
		c.ids = append(c.ids, p)
	}
	for _, ns := range namespaces {
		if ns == "" {
			return c, errors.New("empty namespace")
		}
	}
	c.namespaces = namespaces
	return c, nil
}

// holds reports whether the peer identity id (a SPIFFE ID, or "" for none) matches.
func (c *peerCond) holds(id string) bool {
	if id == "" {
		return false
	}
	for _, want := range c.ids {
		if id == want {
			return true
		}
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	if len(c.namespaces) > 0 {
		ns := namespaceOf(id)
		for _, want := range c.namespaces {
			if ns == want {
				return true
			}
		}
	}
	return false
}

// namespaceOf returns NS of an ID "spiffe://TD/ns/NS/sa/NAME", or "".
func namespaceOf(id string) string {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return ""
	}
	_, path, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	ns, ok := strings.CutPrefix(path, "ns/")
	if !ok {
		return ""
	}
	ns, _, _ = strings.Cut(ns, "/")
	return ns
}
