// Package cors is the CORS policy of a route. It answers preflight requests itself, without
// forwarding them, and adds CORS headers to the responses of requests from allowed origins.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) that asks for an allowed
// origin, method and headers gets 204 with Access-Control-Allow-Origin, -Allow-Methods,
// -Allow-Headers (the requested ones), -Max-Age and, when enabled, -Allow-Credentials; any other
// preflight gets 403 with reason "cors_rejected". Other requests are forwarded; the response of
// one whose Origin is allowed gets Access-Control-Allow-Origin, -Expose-Headers and, when enabled,
// -Allow-Credentials, whether the upstream answered or the gateway did (a refusal by a later
// policy, an upstream failure), so that the page can read either. The policy alone decides these
// headers on its route: the same ones sent by the upstream are removed. Every response the policy
// touches says "Vary: Origin", since what it answers depends on the Origin.
package cors

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ReasonPreflight marks a preflight answer (204) the policy produced instead of forwarding the
// request. It belongs with the other reason codes in package proxy.
const ReasonPreflight = "cors_preflight"

// ReasonRejected marks a preflight the policy refused (403).
const ReasonRejected = proxy.ReasonCORSRejected

// DefaultMaxAge is how long browsers may cache a preflight answer when the policy does not say.
const DefaultMaxAge = 10 * time.Minute

// defaultMethods are the methods allowed when the policy lists none.
var defaultMethods = []string{"GET", "HEAD", "POST"}

// Header names.
const (
	hdrOrigin           = "Origin"
	hdrVary             = "Vary"
	hdrRequestMethod    = "Access-Control-Request-Method"
	hdrRequestHeaders   = "Access-Control-Request-Headers"
	hdrAllowOrigin      = "Access-Control-Allow-Origin"
	hdrAllowMethods     = "Access-Control-Allow-Methods"
	hdrAllowHeaders     = "Access-Control-Allow-Headers"
	hdrAllowCredentials = "Access-Control-Allow-Credentials"
	hdrExposeHeaders    = "Access-Control-Expose-Headers"
	hdrMaxAge           = "Access-Control-Max-Age"
	preflightVary       = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
)

// policy is a compiled CORS policy.
type policy struct {
	route       string
	anyOrigin   bool                // "*" is listed
	star        bool                // answer "*" rather than echo the origin
	exact       map[string]struct{} // serialised origins, and "null" when listed
	wildcards   []wildcard
	anyMethod   bool
	methods     []string
	methodsList string              // Access-Control-Allow-Methods, unless anyMethod
	anyHeader   bool                // "*" is listed; Authorization must still be listed
	headers     map[string]struct{} // lower-case names
	expose      string              // Access-Control-Expose-Headers, or ""
	credentials bool
	maxAge      string
	// plainEdit is the response edit for requests whose origin is missing or not allowed, and
	// starEdit the one for allowed origins when star is set; both allocate nothing per request.
	plainEdit, starEdit func(*httpmsg.Response)
}

// New compiles the CORS policy p of the route named route into a middleware. It fails when p is
// invalid (config validation reports the same problems first).
func New(route string, p *config.CORSPolicy) (proxy.Middleware, error) {
	pol, err := compile(route, p)
	if err != nil {
		return nil, err
	}
	return pol.middleware, nil
}

// compile checks and compiles p.
func compile(route string, p *config.CORSPolicy) (*policy, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("cors: route %q: "+format, append([]any{route}, args...)...)
	}
	if p == nil {
		return nil, fail("no policy")
	}
	if len(p.AllowOrigins) == 0 {
		return nil, fail("allowOrigins is empty")
	}
	pol := &policy{route: route, exact: make(map[string]struct{}), credentials: p.AllowCredentials}
	for _, s := range p.AllowOrigins {
		switch {
		case s == "*":
			pol.anyOrigin = true
		case s == nullOrigin:
			pol.exact[nullOrigin] = struct{}{}
		case strings.Contains(s, "*"):
			w, err := parseWildcard(s)
			if err != nil {
				return nil, fail("allowOrigins: %q: %v", s, err)
			}
			pol.wildcards = append(pol.wildcards, w)
		default:
			o, err := parseOrigin(s)
			if err != nil {
				return nil, fail("allowOrigins: %q: %v", s, err)
			}
			pol.exact[o.String()] = struct{}{}
		}
	}
	if pol.anyOrigin && p.AllowCredentials {
		return nil, fail(`allowCredentials cannot be used with the origin "*"`)
	}
	pol.star = pol.anyOrigin && len(p.AllowOrigins) == 1

	methods := p.AllowMethods
	if len(methods) == 0 {
		methods = defaultMethods
	}
	for _, m := range methods {
		if m == "*" {
			pol.anyMethod = true
			continue
		}
		if !isToken(m) {
			return nil, fail("allowMethods: %q is not a method", m)
		}
		pol.methods = append(pol.methods, normalizeMethod(m))
	}
	pol.methodsList = strings.Join(pol.methods, ", ")

	pol.headers = make(map[string]struct{}, len(p.AllowHeaders))
	for _, h := range p.AllowHeaders {
		if h == "*" {
			pol.anyHeader = true
			continue
		}
		if !isToken(h) {
			return nil, fail("allowHeaders: %q is not a header name", h)
		}
		pol.headers[strings.ToLower(h)] = struct{}{}
	}
	for _, h := range p.ExposeHeaders {
		if h != "*" && !isToken(h) {
			return nil, fail("exposeHeaders: %q is not a header name", h)
		}
	}
	pol.expose = strings.Join(p.ExposeHeaders, ", ")

	switch {
	case p.MaxAge < 0:
		return nil, fail("maxAge %v is negative", p.MaxAge)
	case p.MaxAge == 0:
		pol.maxAge = strconv.FormatInt(int64(DefaultMaxAge/time.Second), 10)
	default:
		pol.maxAge = strconv.FormatInt(int64(p.MaxAge/time.Second), 10)
	}
	pol.plainEdit = pol.editor("")
	pol.starEdit = pol.editor("*")
	return pol, nil
}

// normalizeMethod upper-cases the methods browsers upper-case themselves (Fetch's "normalize");
// other methods are case-sensitive and kept as written.
func normalizeMethod(m string) string {
	for _, std := range []string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"} {
		if strings.EqualFold(m, std) {
			return std
		}
	}
	return m
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isLetter(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
