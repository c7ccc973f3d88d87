package authz

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
)

// Path match kinds.
const (
	pathExact = iota
	pathPrefix
	pathRegex
)

// pathCond is one compiled PathMatch.
type pathCond struct {
	kind int
	path string         // exact path, or prefix without trailing slash ("/" for the root)
	re   *regexp.Regexp // for pathRegex
	lit  string         // literal prefix of every path re matches, a cheap guard
}

// compilePath compiles a PathMatch, which must set exactly one field. Exact paths and prefixes
// must start with "/": the paths they are compared with always do.
func compilePath(m *config.PathMatch) (pathCond, error) {
	n := 0
	for _, s := range []string{m.Exact, m.Prefix, m.Regex} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		return pathCond{}, errors.New("set exactly one of exact, prefix and regex")
	}
	switch {
	case m.Exact != "":
		if !strings.HasPrefix(m.Exact, "/") {
			return pathCond{}, fmt.Errorf("exact %q does not start with \"/\"", m.Exact)
		}
		return pathCond{kind: pathExact, path: m.Exact}, nil
	case m.Prefix != "":
		if !strings.HasPrefix(m.Prefix, "/") {
			return pathCond{}, fmt.Errorf("prefix %q does not start with \"/\"", m.Prefix)
		}
		return pathCond{kind: pathPrefix, path: trimSlashes(m.Prefix)}, nil
	}
	re, err := anchored(m.Regex)
	if err != nil {
		return pathCond{}, fmt.Errorf("regex: %w", err)
	}
	lit, _ := re.LiteralPrefix()
	return pathCond{kind: pathRegex, re: re, lit: lit}, nil
}

// anyPath reports whether any of conds matches the request path: path as it is, and bare, the
// same path without segment parameters (see pathnorm.WithoutParams).
func anyPath(conds []pathCond, path, bare string) bool {
	for i := range conds {
		if conds[i].holds(path, bare) {
			return true
		}
	}
	return false
}

// holds reports whether the condition matches the request path. Exact paths and prefixes are
// compared with bare, the path without segment parameters, so that "/admin;x" and "/admin;x/y"
// are under "/admin" as they are for an upstream that strips such parameters; this holds for deny
// and allow rules alike. Regular expressions see path itself, parameters included.
func (c *pathCond) holds(path, bare string) bool {
	switch c.kind {
	case pathExact:
		return bare == c.path
	case pathPrefix:
		return hasSegmentPrefix(bare, c.path)
	}
	return strings.HasPrefix(path, c.lit) && c.re.MatchString(path)
}

// The router has no exported form of its prefix rule; the two functions below restate it
// (package router: trimPrefix and hasSegmentPrefix), and a test checks that both agree.

// trimSlashes removes trailing slashes from a prefix, keeping "/" for the root prefix.
func trimSlashes(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// hasSegmentPrefix reports whether prefix (without trailing slash, or "/") is a prefix of path
// that ends on a segment boundary.
func hasSegmentPrefix(path, prefix string) bool {
	if prefix == "/" {
		return len(path) > 0 && path[0] == '/'
	}
	return len(path) >= len(prefix) && path[:len(prefix)] == prefix &&
		(len(path) == len(prefix) || path[len(prefix)] == '/')
}

// anchored compiles an RE2 expression that must match a whole value.
func anchored(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}
