package router

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Input is what a request offers for matching.
type Input struct {
	// Host is the request's authority as received: the Host header or :authority. It may carry a
	// port and may be in any case.
	Host string
	// Path is the request path, already normalised (see package pathnorm).
	Path string
	// Method is the request method, for example "GET".
	Method string
	// Header holds the request header fields in arrival order.
	Header httpmsg.Header
	// Query is the raw query string, without the leading '?', or "".
	Query string
}

// Result identifies the winning route and match.
type Result struct {
	// Route is the index of the winning route in the slice given to Compile.
	Route int
	// Match is the index of the winning entry in that route's Match list; it is 0 for a route
	// without match entries, which matches every path.
	Match int
	// Prefix is, when the winning match is a prefix match, the part of the path it matched: the
	// configured prefix without its trailing slash, or "/" for the root prefix. It is always a
	// prefix of Input.Path ending on a segment boundary. It is "" for exact and regex matches.
	Prefix string
}

// Table is a compiled, immutable route table for one listener. Build it with Compile; it is safe
// for concurrent use by any number of goroutines.
type Table struct {
	// exact maps a lowercased host name to the bucket of candidates serving it: routes naming it,
	// routes with wildcards covering it and host-less routes, in precedence order.
	exact map[string]*bucket
	// wild maps a wildcard suffix ("example.com" for "*.example.com") to the bucket of candidates
	// serving a host whose longest matching wildcard it is and that no route names exactly.
	wild map[string]*bucket
	// any holds the host-less candidates, for hosts no route names or covers.
	any *bucket
}

// Path match kinds, in precedence order.
const (
	kindExact = iota
	kindRegex
	kindPrefix
)

// candidate is one compiled (route, match) pair.
type candidate struct {
	route, match int
	method       string         // "" for any method
	kind         int            // kindExact, kindRegex or kindPrefix
	path         string         // exact path, or prefix without trailing slash ("/" for the root)
	re           *regexp.Regexp // path regex, for kindRegex
	lit          string         // literal prefix every path re matches starts with
	size         int            // configured regex or prefix length, for precedence
	headers      []valueCond
	query        []valueCond
}

// valueCond is one compiled header or query condition.
type valueCond struct {
	name    string
	value   string
	re      *regexp.Regexp
	present bool
}

// holds reports whether the condition holds for the value v (ok reports whether there is one).
func (c *valueCond) holds(v string, ok bool) bool {
	switch {
	case !ok:
		return false
	case c.present:
		return true
	case c.re != nil:
		return c.re.MatchString(v)
	}
	return v == c.value
}

// Compile builds the table for the routes serving one listener, given in file order. Result.Route
// indexes routes. The routes are expected to have had defaults applied and to have been
// validated; Compile still returns an error, naming the route, for a regular expression that does
// not compile, an empty host name or a wildcard without a suffix.
func Compile(routes []config.Route) (*Table, error) {
	cands := make([][]*candidate, len(routes))
	hosts := make([]routeHosts, len(routes))
	for i := range routes {
		r := &routes[i]
		h, err := parseHosts(r.Hosts)
		if err != nil {
			return nil, fmt.Errorf("router: route %q: %w", r.Name, err)
		}
		hosts[i] = h
		if len(r.Match) == 0 {
			cands[i] = []*candidate{{route: i, kind: kindPrefix, path: "/", size: 1}}
			continue
		}
		cands[i] = make([]*candidate, len(r.Match))
		for j := range r.Match {
			c, err := compileMatch(&r.Match[j])
			if err != nil {
				return nil, fmt.Errorf("router: route %q match %d: %w", r.Name, j, err)
			}
			c.route, c.match = i, j
			cands[i][j] = c
		}
	}
	return buildTable(cands, hosts), nil
}

// compileMatch compiles one RouteMatch.
func compileMatch(m *config.RouteMatch) (*candidate, error) {
	c := &candidate{method: m.Method, kind: kindPrefix, path: "/", size: 1}
	if p := m.Path; p != nil {
		switch {
		case p.Exact != "":
			c.kind, c.path, c.size = kindExact, p.Exact, len(p.Exact)
		case p.Regex != "":
			re, err := anchored(p.Regex)
			if err != nil {
				return nil, fmt.Errorf("path regex: %w", err)
			}
			c.kind, c.path, c.re, c.size = kindRegex, "", re, len(p.Regex)
			c.lit, _ = re.LiteralPrefix()
		case p.Prefix != "":
			c.path, c.size = trimPrefix(p.Prefix), len(p.Prefix)
		}
	}
	for k := range m.Headers {
		h := &m.Headers[k]
		vc := valueCond{name: h.Name, value: h.Value, present: h.Present}
		if h.Regex != "" && !h.Present {
			re, err := anchored(h.Regex)
			if err != nil {
				return nil, fmt.Errorf("header %q regex: %w", h.Name, err)
			}
			vc.re = re
		}
		c.headers = append(c.headers, vc)
	}
	for k := range m.Query {
		q := &m.Query[k]
		vc := valueCond{name: q.Name, value: q.Value, present: q.Present}
		if q.Regex != "" && !q.Present {
			re, err := anchored(q.Regex)
			if err != nil {
				return nil, fmt.Errorf("query %q regex: %w", q.Name, err)
			}
			vc.re = re
		}
		c.query = append(c.query, vc)
	}
	return c, nil
}

// anchored compiles an RE2 expression that must match a whole value.
func anchored(expr string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + expr + ")$")
}

// trimPrefix removes trailing slashes from a prefix, keeping "/" for the root prefix (and for an
// empty one).
func trimPrefix(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	if p == "" {
		return "/"
	}
	return p
}

// compare orders two candidates serving the same host tier by path, method, header and query
// specificity, then by file order.
func compare(a, b *candidate) int {
	if c := cmp.Compare(a.kind, b.kind); c != 0 {
		return c
	}
	if a.kind != kindExact {
		if c := cmp.Compare(b.size, a.size); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(hasMethod(b), hasMethod(a)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.headers), len(a.headers)); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.query), len(a.query)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.route, b.route); c != 0 {
		return c
	}
	return cmp.Compare(a.match, b.match)
}

func hasMethod(c *candidate) int {
	if c.method != "" {
		return 1
	}
	return 0
}

// sortCandidates orders ranked candidates by host rank, then by compare.
func sortCandidates(rs []ranked) []*candidate {
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		return compare(a.c, b.c)
	})
	out := make([]*candidate, len(rs))
	for i := range rs {
		out[i] = rs[i].c
	}
	return out
}

// Match returns the winning route and match for the request, or false when no route serves it.
// It does not allocate unless a query parameter's name or value needs percent-decoding.
func (t *Table) Match(in *Input) (Result, bool) {
	for _, c := range t.lookup(in.Host).candidates(in.Path) {
		if c.matches(in) {
			r := Result{Route: c.route, Match: c.match}
			if c.kind == kindPrefix {
				r.Prefix = c.path
			}
			return r, true
		}
	}
	return Result{}, false
}

// matches reports whether all of the candidate's conditions hold, cheapest first.
func (c *candidate) matches(in *Input) bool {
	if c.method != "" && c.method != in.Method {
		return false
	}
	switch c.kind {
	case kindExact:
		if in.Path != c.path {
			return false
		}
	case kindPrefix:
		if !hasSegmentPrefix(in.Path, c.path) {
			return false
		}
	case kindRegex:
		if !strings.HasPrefix(in.Path, c.lit) || !c.re.MatchString(in.Path) {
			return false
		}
	}
	for i := range c.headers {
		h := &c.headers[i]
		v, ok := in.Header.Get(h.name)
		if !h.holds(v, ok) {
			return false
		}
	}
	for i := range c.query {
		q := &c.query[i]
		v, ok := queryValue(in.Query, q.name)
		if !q.holds(v, ok) {
			return false
		}
	}
	return true
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
