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

// anyPath reports whether any of conds matches path.
func anyPath(conds []pathCond, path string) bool {
	for i := range conds {
		if conds[i].holds(path) {
			return true
		}
	}
	return false
}

// holds reports whether the condition matches path.
func (c *pathCond) holds(path string) bool {
	switch c.kind {
	case pathExact:
		return path == c.path
	case pathPrefix:
		return hasSegmentPrefix(path, c.path)
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
