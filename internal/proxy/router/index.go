package router

// bucket holds the candidates serving one host class, in precedence order, and an index of them
// by the first segment of the path they can match, so that Match scans only the candidates that
// can match a request's path. Every index list keeps precedence order.
type bucket struct {
	// cands are all the bucket's candidates, in precedence order.
	cands []*candidate
	// seg maps a first path segment ("/users" for "/users/7") to the candidates that can match a
	// path starting with it: exact and prefix paths in that segment, regular expressions whose
	// literal prefix fixes that segment, plus the candidates that can match any path (prefix "/"
	// and other regular expressions). Nil when the bucket is too small or too uniform for the
	// index to pay.
	seg map[string][]*candidate
	// rest holds the candidates that can match any path, for first segments not in seg.
	rest []*candidate
}

// minIndexed is the smallest bucket worth indexing by path segment.
const minIndexed = 8

// newBucket builds a bucket from candidates sorted by precedence.
func newBucket(cands []*candidate) *bucket {
	b := &bucket{cands: cands}
	if len(cands) < minIndexed {
		return b
	}
	seg := map[string][]*candidate{}
	for _, c := range cands {
		if k, ok := segmentKey(c); ok {
			seg[k] = nil
		}
	}
	if len(seg) < 2 {
		return b
	}
	for _, c := range cands {
		if k, ok := segmentKey(c); ok {
			seg[k] = append(seg[k], c)
			continue
		}
		for k := range seg {
			seg[k] = append(seg[k], c)
		}
		b.rest = append(b.rest, c)
	}
	b.seg = seg
	return b
}

// segmentKey returns the first path segment every path the candidate matches starts with, or
// false when it can match paths in any segment.
func segmentKey(c *candidate) (string, bool) {
	switch {
	case c.kind == kindExact:
		return firstSegment(c.path), true
	case c.kind == kindPrefix && c.path != "/":
		// A segment-boundary prefix shares its first segment with every path it matches.
		return firstSegment(c.path), true
	case c.kind == kindRegex && len(c.lit) > 1 && c.lit[0] == '/':
		// A literal prefix that contains a second slash fixes the first segment.
		if k := firstSegment(c.lit); len(k) < len(c.lit) {
			return k, true
		}
	}
	return "", false
}

// firstSegment returns the path up to, not including, its second slash: "/a" for "/a/b", "/a"
// for "/a", "/" for "/".
func firstSegment(p string) string {
	for i := 1; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}

// candidates returns the candidates that can match path, in precedence order.
func (b *bucket) candidates(path string) []*candidate {
	if b.seg == nil {
		return b.cands
	}
	if l, ok := b.seg[firstSegment(path)]; ok {
		return l
	}
	return b.rest
}
