package http1

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// The http-desync-guardian corpus (testdata/http-desync-guardian, Apache-2.0) classifies requests
// into four tiers. Its README and file headers define them:
//
//	Compliant  - an RFC-compliant request: must be accepted.
//	Acceptable - deviates from the RFC without desync risk: the corpus lets it through, so we
//	             accept it too unless it is listed in corpusExceptions.
//	Ambiguous  - the body length is ambiguous; the proxy must reject it or close both connections
//	             after the response. A codec cannot close connections, so we reject.
//	Severe     - dangerous: must be rejected with 400 and the connection closed.
//
// Each case is serialised as "METHOD SP URI SP VERSION CRLF" (no " VERSION" when the version is
// empty), a "Host: example.com" line when the case has no Host field (the corpus does not model the
// Host requirement of HTTP/1.1), "NAME:VALUE CRLF" per field exactly as given (the corpus writes
// values with their leading white space), and a final CRLF.

// corpusException is a Compliant or Acceptable case that meshgate rejects on purpose.
type corpusException struct {
	reason string // the reason code we answer with
	why    string
}

// corpusExceptions lists, by "file: case name", every Compliant or Acceptable case we reject, with
// the reason we reject it. Every entry must be hit, and must fail with exactly that reason.
var corpusExceptions = map[string]corpusException{
	// Transfer codings other than a lone "chunked" (RFC 9112 section 6.1: a server SHOULD answer an
	// unknown coding with 501; a proxy cannot forward a coding it does not decode, since transfer
	// codings are hop-by-hop).
	"more-compliant-tests.yaml: Correct TE OK":                                             {ReasonUnsupportedTransferCoding, "gzip transfer coding is not supported"},
	"more-compliant-tests.yaml: Transfer-Encoding: identity and chunked OK":                {ReasonUnsupportedTransferCoding, "deflate and identity transfer codings are not supported (identity is not even registered since RFC 7230)"},
	"rfc-compliant.yaml: Different Transfer-Encoding headers combined":                     {ReasonUnsupportedTransferCoding, "gzip, deflate, identity and compress transfer codings are not supported"},
	"more-compliant-tests.yaml: Multiple transfer encoding headers in a single request OK": {ReasonAmbiguousFraming, "Transfer-Encoding repeated across field lines is refused as ambiguous framing"},
	"rfc-compliant.yaml: Different Transfer-Encoding headers":                              {ReasonAmbiguousFraming, "Transfer-Encoding repeated across field lines is refused as ambiguous framing"},
	"rfc-compliant.yaml: Transfer-Encoding with a param: chunked;custom_param":             {ReasonAmbiguousFraming, "Transfer-Encoding repeated across field lines is refused as ambiguous framing"},
	"more-compliant-tests.yaml: TE with custom parameters OK":                              {ReasonAmbiguousFraming, "chunked takes no parameters (RFC 9112 section 7); only the exact token is framing we trust"},
	// An empty request-target is not a request-target at all (RFC 9112 section 3: request-target is
	// never empty; "GET  HTTP/1.1" has two spaces).
	"rfc-compliant.yaml: Empty URI": {ReasonBadRequestLine, "empty request-target"},
	// White space between field name and colon: RFC 9112 section 5.1 says a server MUST reject it.
	"acceptable.yaml: No TE/CL headers, some others are non-compliant": {ReasonBadHeader, "white space before colon (RFC 9112 section 5.1: MUST reject)"},
	"acceptable.yaml: TE and some others are non-compliant":            {ReasonBadHeader, "white space before colon (RFC 9112 section 5.1: MUST reject)"},
	"acceptable.yaml: CL and some others are non-compliant":            {ReasonBadHeader, "white space before colon (RFC 9112 section 5.1: MUST reject)"},
	// Control characters in field names are not tokens (RFC 9110 section 5.1).
	"acceptable.yaml: A non-essential header with a non-printable character (x01)": {ReasonBadHeader, "\\x01 in a field name is not a token character"},
	"bad-header-characters.yaml: Some-Header\\x01":                                 {ReasonBadHeader, "\\x01 in a field name is not a token character"},
	"bad-header-characters.yaml: \\x01Some-Header":                                 {ReasonBadHeader, "\\x01 in a field name is not a token character"},
	// Control characters in field values are not field-vchar (RFC 9110 section 5.5); we refuse all
	// CTLs but HTAB rather than forward them.
	"bad-header-characters.yaml: Some-Header: \\x01value": {ReasonBadHeader, "\\x01 in a field value is not field-vchar"},
	"bad-header-characters.yaml: Some-Header: value\\x01": {ReasonBadHeader, "\\x01 in a field value is not field-vchar"},
	// Only HTTP/1.0 and HTTP/1.1 are served; other well-formed versions get 505, and the request
	// line must end exactly after the version.
	"acceptable.yaml: Non-RFC, but OK HTTP/0.9":             {ReasonUnsupportedVersion, "HTTP/0.9 is not supported"},
	"acceptable.yaml: Unknown but OK HTTP/1.2":              {ReasonUnsupportedVersion, "HTTP/1.2 is not a version we can answer in"},
	"acceptable.yaml: Empty version, which means HTTP/0.9":  {ReasonBadRequestLine, "a request line without a version (HTTP/0.9) is not supported"},
	"uri-specific-test-cases.yaml: Extra spaces in version": {ReasonBadRequestLine, "trailing white space after the version is not request-line syntax"},
	"uri-specific-test-cases.yaml: [space] in URI":          {ReasonBadRequestLine, "an unescaped space splits the request line into more than three parts"},
}

type corpusCase struct {
	Name    string `yaml:"name"`
	URI     string `yaml:"uri"`
	Method  string `yaml:"method"`
	Version string `yaml:"version"`
	Headers []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
		Tier  string `yaml:"tier"`
	} `yaml:"headers"`
	Expected struct {
		Tier   string `yaml:"tier"`
		Reason string `yaml:"reason"`
	} `yaml:"expected"`
}

func (c *corpusCase) raw() []byte {
	var b strings.Builder
	b.WriteString(c.Method + " " + c.URI)
	if c.Version != "" {
		b.WriteString(" " + c.Version)
	}
	b.WriteString("\r\n")
	hasHost := false
	for _, h := range c.Headers {
		hasHost = hasHost || httpmsg.EqualFold(h.Name, "host")
	}
	if !hasHost {
		b.WriteString("Host: example.com\r\n")
	}
	for _, h := range c.Headers {
		b.WriteString(h.Name + ":" + h.Value + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func loadCorpus(t testing.TB) map[string][]corpusCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "http-desync-guardian", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	out := make(map[string][]corpusCase)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []corpusCase
		if err := yaml.Unmarshal(data, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(cases) == 0 {
			t.Fatalf("%s: no cases", f)
		}
		out[filepath.Base(f)] = cases
	}
	return out
}

func TestCorpus(t *testing.T) {
	corpus := loadCorpus(t)
	files := make([]string, 0, len(corpus))
	for f := range corpus {
		files = append(files, f)
	}
	sort.Strings(files)

	type tally struct{ total, accepted, rejected, excepted int }
	tiers := map[string]*tally{}
	usedExceptions := map[string]bool{}
	for _, file := range files {
		for _, c := range corpus[file] {
			key := file + ": " + c.Name
			tier := c.Expected.Tier
			tl := tiers[tier]
			if tl == nil {
				tl = &tally{}
				tiers[tier] = tl
			}
			tl.total++

			raw := c.raw()
			var req httpmsg.Request
			n, err := ParseRequest(raw, Limits{}, &req)
			var pe *ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Errorf("%s: %q: error is not a *ParseError: %v", key, raw, err)
				continue
			}
			if err == nil {
				tl.accepted++
				if n != len(raw) {
					t.Errorf("%s: consumed %d of %d bytes", key, n, len(raw))
				}
			} else {
				tl.rejected++
			}

			switch tier {
			case "Severe", "Ambiguous":
				if err == nil {
					t.Errorf("%s (%s/%s): accepted, want rejected: %q", key, tier, c.Expected.Reason, raw)
				}
			case "Compliant", "Acceptable":
				ex, listed := corpusExceptions[key]
				switch {
				case listed && err == nil:
					t.Errorf("%s: listed as an exception (%s) but accepted", key, ex.why)
				case listed:
					usedExceptions[key] = true
					tl.excepted++
					if pe.Reason != ex.reason {
						t.Errorf("%s: rejected with %s, exception says %s", key, pe.Reason, ex.reason)
					}
				case err != nil:
					t.Errorf("%s (%s): rejected: %v: %q", key, tier, err, raw)
				}
			default:
				t.Errorf("%s: unknown tier %q", key, tier)
			}
		}
	}
	for key := range corpusExceptions {
		if !usedExceptions[key] {
			t.Errorf("exception %q matches no Compliant or Acceptable case", key)
		}
	}
	names := make([]string, 0, len(tiers))
	for k := range tiers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		tl := tiers[k]
		t.Logf("%-10s cases=%3d accepted=%3d rejected=%3d (listed exceptions %d)", k, tl.total, tl.accepted, tl.rejected, tl.excepted)
	}
}
