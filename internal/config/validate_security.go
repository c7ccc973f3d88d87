package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/netaddr"
)

// Edge-security bounds.
const (
	maxJWTLeeway        = 10 * time.Minute
	minJWKSRefresh      = time.Second
	maxJWKSRefresh      = 24 * time.Hour
	maxJWTTokenBytes    = 1 << 20
	maxExtAuthzTimeout  = 30 * time.Second
	maxCORSMaxAge       = 24 * time.Hour
	maxAdaptiveLimit    = 1 << 20
	minAdaptiveWindow   = time.Millisecond
	maxAdaptiveWindow   = time.Minute
	maxAdaptiveTolerate = 100.0
)

// jwtAlgorithms are the JWS algorithms a JWT authenticator may allow, by family.
var jwtAlgorithms = map[string]string{
	"HS256": "hmac", "HS384": "hmac", "HS512": "hmac", "Ed25519": "public",
	"RS256": "public", "RS384": "public", "RS512": "public",
	"PS256": "public", "PS384": "public", "PS512": "public",
	"ES256": "public", "ES384": "public", "ES512": "public",
	"EdDSA": "public",
}

// security checks the authenticators, plans and consumers. It runs before routeList, whose
// auth blocks refer to authenticators.
func (v *validator) security() {
	v.authenticators = make(map[string]*Authenticator)
	names := make(map[string]string)
	for i := range v.c.Authenticators {
		a := &v.c.Authenticators[i]
		s := v.object(pathIndex("authenticators", i), a.Name)
		uniqueName(s, a.Name, names)
		if a.Name != "" {
			v.authenticators[a.Name] = a
		}
		v.authenticator(s, a)
	}
	plans := make(map[string]string)
	for i := range v.c.Plans {
		p := &v.c.Plans[i]
		s := v.object(pathIndex("plans", i), p.Name)
		uniqueName(s, p.Name, plans)
		if l := p.RateLimit; l != nil {
			ls := s.key("rateLimit")
			checkRate(ls.key("rate"), l.Rate)
			checkNotNegative(ls.key("burst"), l.Burst)
			if l.Key != (RateLimitKey{}) {
				ls.key("key").errorf("not allowed: a plan's limit always counts each consumer separately")
			}
		}
		if q := p.Quota; q != nil {
			v.quota(s.key("quota"), q)
		}
	}
	v.consumers(plans)
}

// authenticator checks one authenticator.
func (v *validator) authenticator(s scope, a *Authenticator) {
	exactlyOne(s, []string{"apiKey", "jwt", "basic", "clientCert", "extAuthz"},
		a.APIKey != nil, a.JWT != nil, a.Basic != nil, a.ClientCert != nil, a.ExtAuthz != nil)
	if k := a.APIKey; k != nil {
		if !isToken(k.Header) {
			s.key("apiKey").key("header").errorf("%q is not a valid header name", k.Header)
		}
		if k.Query != "" && strings.ContainsAny(k.Query, "&=#?% ") {
			s.key("apiKey").key("query").errorf("%q is not a valid query parameter name", k.Query)
		}
	}
	if j := a.JWT; j != nil {
		v.jwtAuth(s.key("jwt"), j)
	}
	if b := a.Basic; b != nil && !isHeaderValue(b.Realm) || b != nil && strings.Contains(b.Realm, `"`) {
		s.key("basic").key("realm").errorf("%q cannot be sent in a WWW-Authenticate header", b.Realm)
	}
	if e := a.ExtAuthz; e != nil {
		v.extAuthz(s.key("extAuthz"), e)
	}
}

// jwtAuth checks a JWT authenticator and that its key files can be read.
func (v *validator) jwtAuth(s scope, j *JWTAuth) {
	if j.JWKSURL == "" && len(j.KeyFiles) == 0 {
		s.errorf("set jwksURL, keyFiles or both")
	}
	if j.JWKSURL != "" {
		checkHTTPURL(s.key("jwksURL"), j.JWKSURL)
	}
	for i, f := range j.KeyFiles {
		if _, err := readPEMFile(v.c.ResolvePath(f)); err != nil {
			s.key("keyFiles").index(i).errorf("cannot read the key file: %v", err)
		}
	}
	if len(j.Algorithms) == 0 {
		s.key("algorithms").errorf(`required: the accepted signature algorithms, for example ["RS256"]`)
	}
	families := make(map[string]bool)
	for i, alg := range j.Algorithms {
		fam, ok := jwtAlgorithms[alg]
		if !ok {
			s.key("algorithms").index(i).errorf("%q is not an accepted algorithm; use %s", alg, orList(sortedKeys(jwtAlgorithms)))
			continue
		}
		families[fam] = true
	}
	if families["hmac"] && families["public"] {
		s.key("algorithms").errorf("HMAC (HS*) and public-key algorithms cannot be mixed: a public key could then be used as an HMAC secret")
	}
	if families["hmac"] && j.JWKSURL != "" {
		s.key("jwksURL").errorf("HMAC secrets are never taken from a key set URL; put them in keyFiles as JWKs of kty \"oct\"")
	}
	if j.MaxKeyAge > 0 && j.RefreshInterval > 0 && j.MaxKeyAge <= j.RefreshInterval {
		s.key("maxKeyAge").errorf("%v must be longer than refreshInterval (%v), or fetched keys would expire before the next refresh", j.MaxKeyAge, j.RefreshInterval)
	}
	if j.Leeway < 0 || j.Leeway > maxJWTLeeway {
		s.key("leeway").errorf("must be between 0s and %v", maxJWTLeeway)
	}
	resilienceDuration(s.key("refreshInterval"), j.RefreshInterval, minJWKSRefresh, maxJWKSRefresh)
	resilienceDuration(s.key("maxKeyAge"), j.MaxKeyAge, minJWKSRefresh, maxResilienceDuration)
	if j.ConsumerClaim == "" {
		s.key("consumerClaim").errorf("required")
	}
	resilienceCount(s.key("maxTokenBytes"), j.MaxTokenBytes, 64, maxJWTTokenBytes)
	for claim, h := range j.ClaimHeaders {
		if claim == "" {
			s.key("claimHeaders").errorf("a claim name is empty")
		}
		if !isToken(h) {
			s.key("claimHeaders").key(claim).errorf("%q is not a valid header name", h)
		}
	}
}

// extAuthz checks an external authorization authenticator.
func (v *validator) extAuthz(s scope, e *ExtAuthz) {
	if e.URL == "" {
		s.key("url").errorf("required: the base URL of the authorization service")
	} else {
		checkHTTPURL(s.key("url"), e.URL)
	}
	resilienceDuration(s.key("timeout"), e.Timeout, time.Millisecond, maxExtAuthzTimeout)
	for _, list := range []struct {
		key   string
		names []string
	}{{"forwardHeaders", e.ForwardHeaders}, {"upstreamHeaders", e.UpstreamHeaders}} {
		for i, h := range list.names {
			if !isToken(h) {
				s.key(list.key).index(i).errorf("%q is not a valid header name", h)
			}
		}
	}
	if e.ConsumerHeader != "" && !isToken(e.ConsumerHeader) {
		s.key("consumerHeader").errorf("%q is not a valid header name", e.ConsumerHeader)
	}
}

// checkHTTPURL checks an http or https URL with a host.
func checkHTTPURL(s scope, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		s.errorf("%q is not a URL", raw)
	case u.Scheme != "http" && u.Scheme != "https":
		s.errorf("%q must start with http:// or https://", raw)
	case u.Host == "":
		s.errorf("%q has no host", raw)
	case u.User != nil:
		s.errorf("%q must not carry credentials; they would show in logs", raw)
	case u.RawQuery != "" || u.Fragment != "":
		s.errorf("%q must not have a query or fragment", raw)
	}
}

// quota checks a plan's quota.
func (v *validator) quota(s scope, q *Quota) {
	if q.Limit < 1 {
		s.key("limit").errorf("must be at least 1")
	}
	checkOneOf(s.key("period"), q.Period, QuotaDay, QuotaMonth)
	checkRedis(s, q.Redis, q.PasswordEnv, q.DB)
	resilienceDuration(s.key("timeout"), q.Timeout, time.Millisecond, maxRateLimitTimeout)
}

// consumers checks every consumer, and that no credential belongs to two of them.
func (v *validator) consumers(plans map[string]string) {
	v.consumerNames = make(map[string]bool)
	names := make(map[string]string)
	owner := make(map[string]string) // credential kind and value -> path of the consumer with it
	claim := func(s scope, kind, value string) {
		k := kind + "\x00" + value
		if first, dup := owner[k]; dup {
			s.errorf("%s %q already belongs to %s", kind, value, v.where(first))
			return
		}
		owner[k] = s.path
	}
	for i := range v.c.Consumers {
		c := &v.c.Consumers[i]
		s := v.object(pathIndex("consumers", i), c.Name)
		uniqueName(s, c.Name, names)
		if c.Name != "" && !isConsumerName(c.Name) {
			s.key("name").errorf("%q may hold only letters, digits, '.', '_' and '-'", c.Name)
		}
		v.consumerNames[c.Name] = true
		for j, g := range c.Groups {
			if !isConsumerName(g) {
				s.key("groups").index(j).errorf("%q may hold only letters, digits, '.', '_' and '-'", g)
			}
		}
		if c.Plan != "" && plans[c.Plan] == "" {
			s.key("plan").errorf("plan %q is not defined", c.Plan)
		}
		for j, k := range c.APIKeys {
			ks := s.key("apiKeys").index(j)
			if b, err := hex.DecodeString(k.SHA256); err != nil || len(b) != 32 {
				ks.key("sha256").errorf("must be 64 hex digits: the SHA-256 digest of the key, not the key")
				continue
			}
			claim(ks, "API key digest", strings.ToLower(k.SHA256))
		}
		if b := c.Basic; b != nil {
			bs := s.key("basic")
			if b.Username == "" || strings.Contains(b.Username, ":") {
				bs.key("username").errorf("required, without ':'")
			} else {
				claim(bs.key("username"), "user name", b.Username)
			}
			if !isBcryptHash(b.BcryptHash) {
				bs.key("bcryptHash").errorf("must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)")
			}
		}
		if cc := c.Certificate; cc != nil {
			cs := s.key("certificate")
			if len(cc.Subjects)+len(cc.DNSNames)+len(cc.URIs) == 0 {
				cs.errorf("set at least one of subjects, dnsNames and uris")
			}
			for _, l := range []struct {
				key, kind string
				values    []string
			}{{"subjects", "certificate subject", cc.Subjects}, {"dnsNames", "certificate DNS name", cc.DNSNames}, {"uris", "certificate URI", cc.URIs}} {
				for j, val := range l.values {
					if val == "" {
						cs.key(l.key).index(j).errorf("must not be empty")
						continue
					}
					claim(cs.key(l.key).index(j), l.kind, val)
				}
			}
		}
		for j, sub := range c.JWTSubjects {
			if sub == "" {
				s.key("jwtSubjects").index(j).errorf("must not be empty")
				continue
			}
			claim(s.key("jwtSubjects").index(j), "JWT subject", sub)
		}
	}
}

// isConsumerName reports whether s is a non-empty name of letters, digits, '.', '_' and '-'.
func isConsumerName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isBcryptHash reports whether h looks like a bcrypt hash: "$2a$", "$2b$" or "$2y$", a two-digit
// cost from 4 to 31, "$" and 53 characters of salt and digest.
func isBcryptHash(h string) bool {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || !strings.ContainsRune("aby", rune(h[2])) || h[3] != '$' || h[6] != '$' {
		return false
	}
	cost, err := strconv.Atoi(h[4:6])
	return err == nil && cost >= 4 && cost <= 31
}

// routeSecurity checks a route's security policies and its stream idle timeout.
func (v *validator) routeSecurity(s scope, r *Route) {
	if a := r.Auth; a != nil {
		as := s.key("auth")
		if len(a.Authenticators) == 0 {
			as.key("authenticators").errorf("at least one authenticator is required")
		}
		seen := make(map[string]bool)
		for i, name := range a.Authenticators {
			is := as.key("authenticators").index(i)
			auth, ok := v.authenticators[name]
			switch {
			case !ok:
				is.errorf("authenticator %q is not defined", name)
			case seen[name]:
				is.errorf("authenticator %q is listed twice", name)
			case auth.ClientCert != nil:
				v.needClientCA(is, r, name)
			}
			seen[name] = true
		}
	}
	if p := r.Authz; p != nil {
		v.authzPolicy(s.key("authz"), p, false)
	}
	if ip := r.IPAccess; ip != nil {
		is := s.key("ipAccess")
		if len(ip.Allow)+len(ip.Deny) == 0 {
			is.errorf("set allow, deny or both")
		}
		checkPrefixes(is.key("allow"), ip.Allow)
		checkPrefixes(is.key("deny"), ip.Deny)
	}
	if c := r.CORS; c != nil {
		checkCORS(s.key("cors"), c)
	}
	checkNotNegative(s.key("maxBodyBytes"), r.MaxBodyBytes)
	if r.StreamIdleTimeout != nil {
		checkNotNegative(s.key("streamIdleTimeout"), *r.StreamIdleTimeout)
	}
}

// needClientCA checks that every listener of route r verifies client certificates, which the
// client-certificate authenticator name relies on.
func (v *validator) needClientCA(s scope, r *Route, name string) {
	on := make(map[string]bool)
	for _, l := range r.Listeners {
		on[l] = true
	}
	for _, l := range v.c.Listeners {
		if len(on) > 0 && !on[l.Name] {
			continue
		}
		if l.TLS == nil || l.TLS.ClientCA == "" {
			s.errorf("authenticator %q needs client certificates, but listener %q has no tls.clientCA", name, l.Name)
		}
	}
}

// authzPolicy checks an authorization policy; mesh says it is a service's inbound policy, whose
// rules may match peer identities and namespaces.
func (v *validator) authzPolicy(s scope, p *AuthzPolicy, mesh bool) {
	checkOneOf(s.key("default"), p.Default, AuthzAllow, AuthzDeny)
	names := make(map[string]string)
	for i := range p.Rules {
		rule := &p.Rules[i]
		rs := s.key("rules").index(i)
		switch first, dup := names[rule.Name]; {
		case rule.Name == "":
			rs.key("name").errorf("required")
		case dup:
			rs.key("name").errorf("%q is already the name of %s", rule.Name, v.where(first))
		default:
			names[rule.Name] = rs.path
		}
		checkOneOf(rs.key("action"), rule.Action, AuthzAllow, AuthzDeny)
		if len(rule.Consumers)+len(rule.Groups)+len(rule.Claims)+len(rule.Methods)+len(rule.Paths)+
			len(rule.Headers)+len(rule.SourceCIDRs)+len(rule.Identities)+len(rule.Namespaces) == 0 && rule.CEL == "" {
			rs.errorf("set at least one condition; a rule for everything is the policy's default")
		}
		checkPeerConditions(rs, rule, mesh)
		for j, c := range rule.Consumers {
			if c != "*" && !v.consumerNames[c] {
				rs.key("consumers").index(j).errorf("consumer %q is not defined", c)
			}
		}
		for j, c := range rule.Claims {
			cs := rs.key("claims").index(j)
			if c.Name == "" {
				cs.key("name").errorf("required")
			}
			if len(c.Values) == 0 {
				cs.key("values").errorf("at least one value is required")
			}
		}
		for j, m := range rule.Methods {
			if !isMethod(m) || strings.ToUpper(m) != m {
				rs.key("methods").index(j).errorf("%q is not an upper-case HTTP method", m)
			}
		}
		for j := range rule.Paths {
			ps := rs.key("paths").index(j)
			pm := &rule.Paths[j]
			exactlyOne(ps, []string{"exact", "prefix", "regex"}, pm.Exact != "", pm.Prefix != "", pm.Regex != "")
			switch {
			case pm.Exact != "":
				checkMatchPath(ps.key("exact"), pm.Exact)
			case pm.Prefix != "":
				checkMatchPath(ps.key("prefix"), pm.Prefix)
			case pm.Regex != "":
				checkRegex(ps.key("regex"), pm.Regex)
			}
		}
		for j, h := range rule.Headers {
			hs := rs.key("headers").index(j)
			if !isToken(h.Name) {
				hs.key("name").errorf("%q is not a valid header name", h.Name)
			}
			checkValueMatch(hs, h.Value, h.Regex, h.Present)
		}
		checkPrefixes(rs.key("sourceCIDRs"), rule.SourceCIDRs)
	}
}

// checkPrefixes checks a list of CIDRs or single addresses.
func checkPrefixes(s scope, list []string) {
	for i, p := range list {
		if _, err := netaddr.ParsePrefix(p); err != nil {
			s.index(i).errorf("%q is not an IP address or CIDR", p)
		}
	}
}

// checkCORS checks a CORS policy.
func checkCORS(s scope, c *CORSPolicy) {
	if len(c.AllowOrigins) == 0 {
		s.key("allowOrigins").errorf(`at least one origin is required ("*" for any)`)
	}
	for i, o := range c.AllowOrigins {
		os := s.key("allowOrigins").index(i)
		if o == "*" {
			if c.AllowCredentials {
				os.errorf(`"*" cannot be used with allowCredentials; list the origins`)
			}
			continue
		}
		u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard.", 1))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			os.errorf(`%q is not an origin such as "https://app.example.com" or "https://*.example.com"`, o)
		}
	}
	for i, m := range c.AllowMethods {
		if !isMethod(m) {
			s.key("allowMethods").index(i).errorf("%q is not an HTTP method", m)
		}
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"allowHeaders", c.AllowHeaders}, {"exposeHeaders", c.ExposeHeaders}} {
		for i, h := range list.names {
			if !isToken(h) {
				s.key(list.key).index(i).errorf("%q is not a valid header name", h)
			}
		}
	}
	if c.MaxAge < 0 || c.MaxAge > maxCORSMaxAge {
		s.key("maxAge").errorf("must be between 0s and %v", maxCORSMaxAge)
	}
}

// checkSecurityHeaders checks a security-headers filter.
func checkSecurityHeaders(s scope, h *SecurityHeaders) {
	checkNotNegative(s.key("hstsMaxAge"), h.HSTSMaxAge)
	if h.HSTSMaxAge == 0 && (h.HSTSIncludeSubdomains || h.HSTSPreload) {
		s.key("hstsMaxAge").errorf("required with hstsIncludeSubdomains or hstsPreload")
	}
	checkOneOf(s.key("frameOptions"), h.FrameOptions, "DENY", "SAMEORIGIN", "off")
	for key, val := range map[string]string{"referrerPolicy": h.ReferrerPolicy, "contentSecurityPolicy": h.ContentSecurityPolicy} {
		if !isHeaderValue(val) {
			s.key(key).errorf("%q cannot be sent as a header value", val)
		}
	}
}

// listenerSecurity checks a listener's security settings and TLS client-certificate policy.
func (v *validator) listenerSecurity(s scope, l *Listener) {
	for i, h := range l.Security.InternalHeaders {
		if !isToken(h) {
			s.key("security").key("internalHeaders").index(i).errorf("%q is not a valid header name", h)
		}
	}
}

// tlsPolicy checks the cipher suites and client CA of a TLS block.
func (v *validator) tlsPolicy(s scope, t *ListenerTLS) {
	known := make(map[string]bool)
	for _, cs := range tls.CipherSuites() {
		known[cs.Name] = true
	}
	for i, name := range t.CipherSuites {
		if !known[name] {
			s.key("cipherSuites").index(i).errorf("%q is not a secure TLS 1.2 cipher suite Go supports", name)
		}
	}
	if t.ClientCA == "" {
		if t.ClientAuth != "" {
			s.key("clientAuth").errorf("needs clientCA")
		}
		return
	}
	checkOneOf(s.key("clientAuth"), t.ClientAuth, ClientAuthOptional, ClientAuthRequire)
	if _, err := v.c.LoadCertPool(t.ClientCA); err != nil {
		s.key("clientCA").errorf("%v", err)
	}
}

// LoadCertPool reads the PEM file of certificate authorities at path (resolved against the
// config file's directory).
func (c *Config) LoadCertPool(path string) (*x509.CertPool, error) {
	data, err := readPEMFile(c.ResolvePath(path))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errNoCertificates
	}
	return pool, nil
}

// adminSecurity checks that an admin API reachable beyond loopback is protected.
func (v *validator) adminSecurity(s scope) {
	a := &v.c.Admin
	if a.TokenEnv != "" && !isEnvName(a.TokenEnv) {
		s.key("tokenEnv").errorf("%q is not a valid environment variable name", a.TokenEnv)
	}
	if a.TLS != nil {
		if a.TLS.ACME != nil {
			s.key("tls").key("acme").errorf("not supported for the admin API: give it certificates")
		}
		v.listenerTLS(s.key("tls"), a.TLS)
	}
	if a.Address == "off" || a.Address == "" {
		return
	}
	host, _, err := net.SplitHostPort(a.Address)
	if err != nil {
		return // checkListenAddress reports it
	}
	if netaddr.IsLoopbackHost(host) {
		return
	}
	if a.TokenEnv == "" && (a.TLS == nil || a.TLS.ClientCA == "" || a.TLS.ClientAuth != ClientAuthRequire) {
		s.key("address").errorf("%q is reachable beyond this machine: set tokenEnv or tls with clientCA and clientAuth \"require\"", a.Address)
	}
	if a.AuditLog == "" {
		s.key("auditLog").errorf(`required: a file path or "off"`)
	}
}

// adaptive checks a service's adaptive concurrency limit.
func checkAdaptive(s scope, a *AdaptiveConcurrency) {
	resilienceCount(s.key("initialLimit"), a.InitialLimit, 1, maxAdaptiveLimit)
	resilienceCount(s.key("minLimit"), a.MinLimit, 1, maxAdaptiveLimit)
	resilienceCount(s.key("maxLimit"), a.MaxLimit, 1, maxAdaptiveLimit)
	if a.MinLimit > a.MaxLimit {
		s.key("minLimit").errorf("%d is above maxLimit (%d)", a.MinLimit, a.MaxLimit)
	}
	if a.InitialLimit < a.MinLimit || a.InitialLimit > a.MaxLimit {
		s.key("initialLimit").errorf("%d is not between minLimit (%d) and maxLimit (%d)", a.InitialLimit, a.MinLimit, a.MaxLimit)
	}
	resilienceDuration(s.key("sampleWindow"), a.SampleWindow, minAdaptiveWindow, maxAdaptiveWindow)
	if !(a.Tolerance >= 1 && a.Tolerance <= maxAdaptiveTolerate) {
		s.key("tolerance").errorf("must be between 1 and %v", maxAdaptiveTolerate)
	}
}

// errNoCertificates reports a CA file without a PEM certificate.
var errNoCertificates = errors.New("no PEM certificate found in the file")

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// acme checks an ACME block.
func (v *validator) acme(s scope, a *ACME) {
	if len(a.Domains) == 0 {
		s.key("domains").errorf("at least one domain is required")
	}
	for i, d := range a.Domains {
		if !isHostname(d) || strings.HasPrefix(d, "*.") {
			s.key("domains").index(i).errorf("%q is not a host name (wildcards need DNS challenges, which are not supported)", d)
		}
	}
	if a.DirectoryURL != "" {
		checkHTTPURL(s.key("directoryURL"), a.DirectoryURL)
	}
	if a.CARoots != "" {
		if _, err := v.c.LoadCertPool(a.CARoots); err != nil {
			s.key("caRoots").errorf("%v", err)
		}
	}
	if !a.AgreeToTerms {
		s.key("agreeToTerms").errorf("must be true: the CA's terms of service must be accepted to get certificates")
	}
	checkOneOf(s.key("challenge"), a.Challenge, ACMETLSALPN01, ACMEHTTP01)
	switch {
	case a.Challenge == ACMEHTTP01 && a.HTTPListener == "":
		s.key("httpListener").errorf("required with challenge http-01: name the plain-HTTP listener that answers the challenges")
	case a.HTTPListener != "" && a.Challenge != ACMEHTTP01:
		s.key("httpListener").errorf("only used with challenge http-01")
	case a.HTTPListener != "":
		var l *Listener
		for i := range v.c.Listeners {
			if v.c.Listeners[i].Name == a.HTTPListener {
				l = &v.c.Listeners[i]
			}
		}
		if l == nil {
			s.key("httpListener").errorf("listener %q is not defined", a.HTTPListener)
		} else if l.Protocol != ProtocolHTTP {
			s.key("httpListener").errorf("listener %q is %s; HTTP-01 challenges are answered on a plain http listener", a.HTTPListener, l.Protocol)
		}
	}
}
