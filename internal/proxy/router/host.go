package router

import (
	"errors"
	"math"
	"strings"
	"unsafe"
)

// routeHosts is a route's host list, canonicalised.
type routeHosts struct {
	exact []string // lowercased names
	wild  []string // lowercased suffixes: "example.com" for "*.example.com"
	any   bool     // no hosts, or "*": serves every host
}

// Host ranks: lower is more specific. A wildcard ranks as minus its suffix length, so longer
// suffixes come first.
const (
	rankExact = math.MinInt
	rankAny   = 1
)

func wildRank(suffix string) int { return -len(suffix) }

// ranked is a candidate with the rank of the host it is reached through in one bucket.
type ranked struct {
	rank int
	c    *candidate
}

// parseHosts canonicalises a route's hosts: ASCII lower case, one trailing dot and IPv6 brackets
// removed.
func parseHosts(hosts []string) (routeHosts, error) {
	var rh routeHosts
	if len(hosts) == 0 {
		rh.any = true
		return rh, nil
	}
	for _, h := range hosts {
		h = asciiLower(h)
		if n := len(h); n > 2 && h[0] == '[' && h[n-1] == ']' {
			h = h[1 : n-1]
		}
		if n := len(h); n > 1 && h[n-1] == '.' {
			h = h[:n-1]
		}
		switch {
		case h == "":
			return rh, errors.New("empty host")
		case h == "*":
			rh.any = true
		case strings.HasPrefix(h, "*."):
			if len(h) == 2 {
				return rh, errors.New("wildcard host without a suffix")
			}
			rh.wild = append(rh.wild, h[2:])
		default:
			rh.exact = append(rh.exact, h)
		}
	}
	return rh, nil
}

// asciiLower lowers ASCII letters only, as host matching requires; other bytes are kept.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// buildTable buckets the candidates by host, each bucket sorted by precedence.
func buildTable(cands [][]*candidate, hosts []routeHosts) *Table {
	exactIdx := map[string][]int{}
	wildIdx := map[string][]int{}
	var anyRoutes []int
	for i, h := range hosts {
		if h.any {
			anyRoutes = append(anyRoutes, i)
		}
		for _, e := range h.exact {
			exactIdx[e] = appendRoute(exactIdx[e], i)
		}
		for _, w := range h.wild {
			wildIdx[w] = appendRoute(wildIdx[w], i)
		}
	}

	build := func(add func(set func(routes []int, rank int))) *bucket {
		best := map[int]int{}
		add(func(routes []int, rank int) {
			for _, r := range routes {
				if old, ok := best[r]; !ok || rank < old {
					best[r] = rank
				}
			}
		})
		var rs []ranked
		for r, rank := range best {
			for _, c := range cands[r] {
				rs = append(rs, ranked{rank, c})
			}
		}
		return newBucket(sortCandidates(rs))
	}

	t := &Table{
		exact: make(map[string]*bucket, len(exactIdx)),
		wild:  make(map[string]*bucket, len(wildIdx)),
	}
	for e, routes := range exactIdx {
		t.exact[e] = build(func(set func([]int, int)) {
			set(routes, rankExact)
			// Wildcards covering e: suffixes after a dot, with at least one byte before it.
			for i := 1; i < len(e); i++ {
				if e[i] == '.' {
					set(wildIdx[e[i+1:]], wildRank(e[i+1:]))
				}
			}
			set(anyRoutes, rankAny)
		})
	}
	for w, routes := range wildIdx {
		t.wild[w] = build(func(set func([]int, int)) {
			set(routes, wildRank(w))
			// Shorter wildcards covering every host *.w covers. The host has at least one byte
			// before w, so a dot at w[0] counts.
			for i := 0; i < len(w); i++ {
				if w[i] == '.' {
					set(wildIdx[w[i+1:]], wildRank(w[i+1:]))
				}
			}
			set(anyRoutes, rankAny)
		})
	}
	t.any = build(func(set func([]int, int)) { set(anyRoutes, rankAny) })
	return t
}

// appendRoute appends r unless it is already last (a route naming a host twice).
func appendRoute(routes []int, r int) []int {
	if n := len(routes); n > 0 && routes[n-1] == r {
		return routes
	}
	return append(routes, r)
}

// hostName strips the port (keeping the address of an IPv6 literal without brackets) and one
// trailing dot from a request's authority.
func hostName(h string) string {
	if len(h) > 0 && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	return h
}

// lookup returns the bucket of candidates serving the request authority host, in precedence order.
func (t *Table) lookup(host string) *bucket {
	h := hostName(host)
	if h == "" || (len(t.exact) == 0 && len(t.wild) == 0) {
		return t.any
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return t.lookupFold(h)
		}
	}
	return t.lookupLower(h)
}

// lookupFold lowers h into a stack buffer before the lookup. Host names are at most 253 bytes;
// longer ones are lowered on the heap.
func (t *Table) lookupFold(h string) *bucket {
	var buf [256]byte
	var b []byte
	if len(h) <= len(buf) {
		b = buf[:len(h)]
	} else {
		b = make([]byte, len(h))
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	// lookupLower only uses its argument as map keys and does not retain it, so a string viewing
	// the stack buffer is safe.
	return t.lookupLower(unsafe.String(unsafe.SliceData(b), len(b)))
}

// lookupLower looks up a lowercase host name: an exact bucket, else the bucket of the longest
// wildcard suffix that matches it (one or more bytes before a dot), else the host-less bucket.
func (t *Table) lookupLower(h string) *bucket {
	if l, ok := t.exact[h]; ok {
		return l
	}
	if len(t.wild) > 0 {
		for i := 1; i < len(h); i++ {
			if h[i] == '.' {
				if l, ok := t.wild[h[i+1:]]; ok {
					return l
				}
			}
		}
	}
	return t.any
}
