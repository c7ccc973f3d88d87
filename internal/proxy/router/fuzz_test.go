package router

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Small vocabularies make overlapping routes likely; some entries are invalid on purpose.
var (
	fuzzHosts   = []string{"a.example.com", "*.example.com", "*.b.example.com", "b.example.com", "A.B.Example.com.", "*", "[::1]", "*.com", "x", "*..", "", "*.a.example.com"}
	fuzzExact   = []string{"/", "/a", "/a/b", "/ab", "/a/", "//a", "/a/b/c"}
	fuzzPrefix  = []string{"/", "/a", "/a/", "/ab", "/a/b", "a", "//", "/a/b/"}
	fuzzRegex   = []string{"/a.*", "/[ab]+", "/a/[0-9]+", ".*", "/a|/b", "(", "(?i)/A.*", "/a/b/.+", "/ab?"}
	fuzzMethods = []string{"", "GET", "POST"}
	fuzzNames   = []string{"x-a", "X-B", "a", "a b", "\u00e9"}
	fuzzValues  = []string{"", "1", "v1", "x y"}
	fuzzRes     = []string{"[0-9]", "v.*", "[", ".*"}
)

// fuzzRoutes builds a route set from bytes, each byte choosing from the vocabularies.
func fuzzRoutes(spec []byte) []config.Route {
	next := func(n int) int {
		if len(spec) == 0 {
			return 0
		}
		b := spec[0]
		spec = spec[1:]
		return int(b) % n
	}
	var routes []config.Route
	for len(spec) > 0 && len(routes) < 16 {
		var r config.Route
		for range next(3) {
			r.Hosts = append(r.Hosts, fuzzHosts[next(len(fuzzHosts))])
		}
		for range next(4) {
			var m config.RouteMatch
			switch next(4) {
			case 1:
				m.Path = &config.PathMatch{Exact: fuzzExact[next(len(fuzzExact))]}
			case 2:
				m.Path = &config.PathMatch{Prefix: fuzzPrefix[next(len(fuzzPrefix))]}
			case 3:
				m.Path = &config.PathMatch{Regex: fuzzRegex[next(len(fuzzRegex))]}
			}
			m.Method = fuzzMethods[next(len(fuzzMethods))]
			for range next(3) {
				h := config.HeaderMatch{Name: fuzzNames[next(len(fuzzNames))]}
				switch next(3) {
				case 0:
					h.Value = fuzzValues[next(len(fuzzValues))]
				case 1:
					h.Regex = fuzzRes[next(len(fuzzRes))]
				case 2:
					h.Present = true
				}
				m.Headers = append(m.Headers, h)
			}
			for range next(3) {
				q := config.QueryMatch{Name: fuzzNames[next(len(fuzzNames))]}
				switch next(3) {
				case 0:
					q.Value = fuzzValues[next(len(fuzzValues))]
				case 1:
					q.Regex = fuzzRes[next(len(fuzzRes))]
				case 2:
					q.Present = true
				}
				m.Query = append(m.Query, q)
			}
			r.Match = append(r.Match, m)
		}
		routes = append(routes, r)
	}
	return routes
}

func FuzzMatch(f *testing.F) {
	f.Add([]byte{1, 1, 1, 2, 0, 0, 0, 1, 0, 1, 1, 0, 0}, "a.example.com", "/a/b", "GET", "a=1", "x-a", "1")
	f.Add([]byte{2, 1, 2, 3, 2, 3, 1, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, "Q.B.EXAMPLE.COM.:80", "/a/7", "POST", "a%20b=x+y&a=1", "X-B", "v1")
	f.Add([]byte{0, 1, 3, 6, 0, 0, 0, 2, 1, 1, 2, 0, 0, 0}, "[::1]:8080", "/ab", "GET", "", "a", "")
	f.Add([]byte("routes with bytes that choose many things at once, hosts, paths and regexes"), "b.example.com", "//a", "GET", "\u00e9=1", "\u00e9", "x y")
	f.Fuzz(func(t *testing.T, spec []byte, host, path, method, query, hname, hval string) {
		routes := fuzzRoutes(spec)
		tab, err := Compile(routes)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "router: ") {
				t.Fatalf("Compile error without prefix: %v", err)
			}
			return
		}
		in := Input{
			Host:   host,
			Path:   path,
			Method: method,
			Query:  query,
			Header: httpmsg.Header{{Name: hname, Value: hval}, {Name: "X-A", Value: "1"}},
		}
		got, ok := tab.Match(&in)
		again, ok2 := tab.Match(&in)
		if got != again || ok != ok2 {
			t.Fatalf("Match not deterministic: %+v %v then %+v %v", got, ok, again, ok2)
		}
		if !ok {
			got = miss
		}
		if want := refMatch(routes, &in); got != want {
			t.Fatalf("routes %+v\ninput %+v\nMatch = %+v, reference %+v", routes, in, got, want)
		}
		if ok && got.Prefix != "" && !hasSegmentPrefix(in.Path, got.Prefix) {
			t.Fatalf("Prefix %q does not prefix path %q", got.Prefix, in.Path)
		}
	})
}

// TestMatchReference compares Match with the brute-force reference on many random route sets,
// large enough that buckets get their path index.
func TestMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inHosts := []string{"a.example.com", "B.example.com:443", "x.b.example.com", "y.a.example.com", "other.org", "", "[::1]:80", "x", "example.com"}
	inPaths := []string{"/", "/a", "/a/", "/a/b", "/a/7", "/ab", "/abc", "//a", "/a/b/c", "/b", "a", "/A/x"}
	inQueries := []string{"", "a=1", "a+b=x+y&a=v1", "%C3%A9=1&a", "a=%zz&a=1"}
	indexed := 0
	for range 1000 {
		spec := make([]byte, 20+rng.IntN(400))
		for i := range spec {
			spec[i] = byte(rng.UintN(256))
		}
		// Keep the valid routes only, so that tables are large.
		var routes []config.Route
		for _, r := range fuzzRoutes(spec) {
			if _, err := Compile([]config.Route{r}); err == nil {
				routes = append(routes, r)
			}
		}
		tab, err := Compile(routes)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range tab.exact {
			if b.seg != nil {
				indexed++
			}
		}
		for range 30 {
			in := Input{
				Host:   inHosts[rng.IntN(len(inHosts))],
				Path:   inPaths[rng.IntN(len(inPaths))],
				Method: fuzzMethods[rng.IntN(len(fuzzMethods))],
				Query:  inQueries[rng.IntN(len(inQueries))],
				Header: httpmsg.Header{{Name: fuzzNames[rng.IntN(len(fuzzNames))], Value: fuzzValues[rng.IntN(len(fuzzValues))]}},
			}
			got, ok := tab.Match(&in)
			if !ok {
				got = miss
			}
			if want := refMatch(routes, &in); got != want {
				t.Fatalf("routes %+v\ninput %+v\nMatch = %+v, reference %+v", routes, in, got, want)
			}
		}
	}
	t.Logf("%d indexed buckets", indexed)
	if indexed == 0 {
		t.Fatal("no bucket was indexed; the test does not cover the path index")
	}
}
