package config

import "time"

// Consumer is a named API client: the credentials that identify it, the groups it belongs to and
// the plan that meters it. Authentication maps a request to at most one consumer; its name goes to
// the access log, the metrics and the upstream header X-Meshgate-Consumer, and rate limits, quotas
// and authorization rules can name it.
type Consumer struct {
	// Name identifies the consumer. Required, unique; letters, digits, '.', '_' and '-'.
	Name string `yaml:"name" json:"name"`
	// Groups the consumer belongs to; authorization rules can name them.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Plan names the plan (rate limit and quota) the consumer is metered by. Default: none.
	Plan string `yaml:"plan,omitempty" json:"plan,omitempty"`
	// APIKeys are the consumer's API keys, stored only as hashes.
	APIKeys []APIKeyCredential `yaml:"apiKeys,omitempty" json:"apiKeys,omitempty"`
	// Basic is the consumer's user name and bcrypt password hash for HTTP basic authentication.
	Basic *BasicCredential `yaml:"basic,omitempty" json:"basic,omitempty"`
	// Certificate maps TLS client certificates to the consumer.
	Certificate *CertificateCredential `yaml:"certificate,omitempty" json:"certificate,omitempty"`
	// JWTSubjects are the JWT "sub" claims that identify the consumer (with a JWT authenticator
	// whose consumerClaim is unset or "sub").
	JWTSubjects []string `yaml:"jwtSubjects,omitempty" json:"jwtSubjects,omitempty"`
}

// APIKeyCredential is one API key, stored as the SHA-256 of the key: the key itself is never
// written in the config, never logged, and compared in constant time.
type APIKeyCredential struct {
	// SHA256 is the lowercase hex SHA-256 digest of the key (`printf %s KEY | sha256sum`).
	// Required.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// ID is a label for the key, so logs and the admin API can say which key was used without
	// showing it. Default: the first 8 hex digits of the digest.
	ID string `yaml:"id,omitempty" json:"id,omitempty"`
}

// BasicCredential is a user name and bcrypt password hash for HTTP basic authentication.
type BasicCredential struct {
	// Username is the user name. Required, unique among consumers; no ':'.
	Username string `yaml:"username" json:"username"`
	// BcryptHash is the bcrypt hash of the password (for example from `htpasswd -nbB`). Required.
	BcryptHash string `yaml:"bcryptHash" json:"bcryptHash"`
}

// CertificateCredential maps verified TLS client certificates to a consumer. A certificate maps
// when any listed value matches; each value may belong to one consumer only.
type CertificateCredential struct {
	// Subjects are certificate subject distinguished names as Go prints them, for example
	// "CN=billing,O=Example".
	Subjects []string `yaml:"subjects,omitempty" json:"subjects,omitempty"`
	// DNSNames are DNS subject alternative names.
	DNSNames []string `yaml:"dnsNames,omitempty" json:"dnsNames,omitempty"`
	// URIs are URI subject alternative names, for example SPIFFE IDs.
	URIs []string `yaml:"uris,omitempty" json:"uris,omitempty"`
}

// Plan is a named set of limits consumers subscribe to (for example "free" and "gold").
type Plan struct {
	// Name identifies the plan; consumers refer to it. Required, unique.
	Name string `yaml:"name" json:"name"`
	// RateLimit limits each consumer of the plan separately, on every route that authenticates
	// it: a local token bucket per consumer.
	RateLimit *LocalRateLimit `yaml:"rateLimit,omitempty" json:"rateLimit,omitempty"`
	// Quota caps each consumer's requests per day or month, counted in Redis so every replica
	// agrees. Requests over it get 429 with reason "quota_exceeded".
	Quota *Quota `yaml:"quota,omitempty" json:"quota,omitempty"`
}

// Quota periods.
const (
	QuotaDay   = "day"   // a UTC calendar day.
	QuotaMonth = "month" // a UTC calendar month.
)

// Quota is a count of requests per calendar period, kept in Redis.
type Quota struct {
	// Limit is the requests allowed per period. Required, at least 1.
	Limit int64 `yaml:"limit" json:"limit"`
	// Period is "day" or "month" (UTC calendar periods). Required.
	Period string `yaml:"period" json:"period"`
	// Redis is the address (host:port) of the Redis server that keeps the counts. Required.
	Redis string `yaml:"redis" json:"redis"`
	// PasswordEnv names an environment variable holding the Redis password. Default: none.
	PasswordEnv string `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
	// DB is the Redis database number. Default 0.
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// Timeout bounds one Redis round trip. Default 50ms.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// FailOpen admits requests when Redis cannot answer in time. Default false: they get 503 with
	// reason "quota_unavailable".
	FailOpen bool `yaml:"failOpen,omitempty" json:"failOpen,omitempty"`
}

// Authenticator is one named way of establishing who is calling. Exactly one of its kinds must
// be set. Routes list the authenticators they accept.
type Authenticator struct {
	// Name identifies the authenticator; routes refer to it. Required, unique.
	Name string `yaml:"name" json:"name"`
	// APIKey reads an API key from a header (or a query parameter) and maps it to a consumer.
	APIKey *APIKeyAuth `yaml:"apiKey,omitempty" json:"apiKey,omitempty"`
	// JWT verifies a bearer JSON Web Token.
	JWT *JWTAuth `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	// Basic checks HTTP basic credentials against consumers' bcrypt hashes.
	Basic *BasicAuth `yaml:"basic,omitempty" json:"basic,omitempty"`
	// ClientCert maps the TLS client certificate the listener verified to a consumer. The
	// listener needs tls.clientCA.
	ClientCert *ClientCertAuth `yaml:"clientCert,omitempty" json:"clientCert,omitempty"`
	// ExtAuthz asks an external HTTP service whether to admit each request, like Envoy's ext_authz.
	ExtAuthz *ExtAuthz `yaml:"extAuthz,omitempty" json:"extAuthz,omitempty"`
}

// APIKeyAuth reads an API key from a request header, or from a query parameter when allowed.
type APIKeyAuth struct {
	// Header carries the key. Default "X-API-Key". The header is removed before forwarding.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Query, when set, also accepts the key in this query parameter (keys in URLs end up in
	// logs and browser histories: prefer the header). Default: off.
	Query string `yaml:"query,omitempty" json:"query,omitempty"`
}

// JWTAuth verifies a JSON Web Token sent as "Authorization: Bearer TOKEN". Keys come from a JWKS
// URL (cached, refreshed, and fetched again when a token names an unknown key id) or from files.
// Only the listed algorithms are accepted; "none" never is. Header parameters that point at keys
// (jku, x5u, jwk, x5c) are ignored.
type JWTAuth struct {
	// JWKSURL is where the JSON Web Key Set is fetched from. Set it, KeyFiles, or both.
	JWKSURL string `yaml:"jwksURL,omitempty" json:"jwksURL,omitempty"`
	// KeyFiles are PEM or JWK/JWKS files with verification keys. Relative paths are relative to
	// the config file's directory.
	KeyFiles []string `yaml:"keyFiles,omitempty" json:"keyFiles,omitempty"`
	// Algorithms is the allowlist, for example ["RS256", "ES256"]. Required. HMAC (HS*) cannot be
	// mixed with public-key algorithms.
	Algorithms []string `yaml:"algorithms" json:"algorithms"`
	// Issuer, when set, must equal the token's "iss".
	Issuer string `yaml:"issuer,omitempty" json:"issuer,omitempty"`
	// Audiences, when set, must include one of the token's "aud" values.
	Audiences []string `yaml:"audiences,omitempty" json:"audiences,omitempty"`
	// Leeway is the clock skew tolerated on "exp", "nbf" and "iat". Default 30s.
	Leeway time.Duration `yaml:"leeway,omitempty" json:"leeway,omitempty"`
	// RefreshInterval is how often the JWKS is fetched again. Default 5m.
	RefreshInterval time.Duration `yaml:"refreshInterval,omitempty" json:"refreshInterval,omitempty"`
	// MaxKeyAge is how long fetched keys stay usable when refreshes fail; after that every token
	// is refused (fail closed) until a fetch succeeds. Default 1h.
	MaxKeyAge time.Duration `yaml:"maxKeyAge,omitempty" json:"maxKeyAge,omitempty"`
	// ConsumerClaim names the claim whose value identifies the consumer: a consumer whose
	// jwtSubjects lists it. Default "sub". A token whose value maps to no consumer is still
	// authenticated, without a consumer.
	ConsumerClaim string `yaml:"consumerClaim,omitempty" json:"consumerClaim,omitempty"`
	// ClaimHeaders copies claims to upstream request headers: claim name to header name. Clients
	// cannot send these headers themselves: they are removed from every request.
	ClaimHeaders map[string]string `yaml:"claimHeaders,omitempty" json:"claimHeaders,omitempty"`
	// MaxTokenBytes refuses longer tokens before parsing them. Default 8192.
	MaxTokenBytes int `yaml:"maxTokenBytes,omitempty" json:"maxTokenBytes,omitempty"`
}

// BasicAuth is HTTP basic authentication against consumers' bcrypt hashes.
type BasicAuth struct {
	// Realm is sent in the WWW-Authenticate challenge. Default "meshgate".
	Realm string `yaml:"realm,omitempty" json:"realm,omitempty"`
}

// ClientCertAuth maps a verified TLS client certificate to a consumer by subject or SAN.
type ClientCertAuth struct {
	// AllowUnmapped authenticates a verified certificate that maps to no consumer (without a
	// consumer). Default false: such requests get 401.
	AllowUnmapped bool `yaml:"allowUnmapped,omitempty" json:"allowUnmapped,omitempty"`
}

// ExtAuthz sends each request's head (no body) to an external authorization service as an HTTP
// request with the same method and path under PathPrefix. A 2xx answer admits the request; any
// other answer is returned to the client with reason "ext_authz_denied". Errors and timeouts
// refuse the request (503, reason "ext_authz_unavailable") unless FailOpen is set.
type ExtAuthz struct {
	// URL is the base URL of the service, "http://host:port" optionally with a path prefix.
	// Required.
	URL string `yaml:"url" json:"url"`
	// Timeout bounds each call. Default 200ms.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// FailOpen admits requests when the service cannot be reached or times out. Default false.
	FailOpen bool `yaml:"failOpen,omitempty" json:"failOpen,omitempty"`
	// ForwardHeaders are the request headers sent to the service. Default: Authorization, Cookie,
	// and the X-Forwarded-* and X-Request-Id headers meshgate sets.
	ForwardHeaders []string `yaml:"forwardHeaders,omitempty" json:"forwardHeaders,omitempty"`
	// UpstreamHeaders are headers of the service's 2xx answer copied to the upstream request
	// (for example "X-User-Id"). Clients cannot send these themselves: they are removed.
	UpstreamHeaders []string `yaml:"upstreamHeaders,omitempty" json:"upstreamHeaders,omitempty"`
	// ConsumerHeader, when set, is a header of the service's 2xx answer that names the consumer.
	ConsumerHeader string `yaml:"consumerHeader,omitempty" json:"consumerHeader,omitempty"`
}

// RouteAuth says how a route's callers are authenticated.
type RouteAuth struct {
	// Authenticators are tried in order; the first whose credential the request carries
	// decides. A request with none of them gets 401 with reason "unauthenticated". Required.
	Authenticators []string `yaml:"authenticators" json:"authenticators"`
	// Optional admits requests that carry no credential at all, anonymously; a credential that
	// is present but wrong is still refused. Default false.
	Optional bool `yaml:"optional,omitempty" json:"optional,omitempty"`
}

// Authorization actions.
const (
	AuthzAllow = "allow"
	AuthzDeny  = "deny"
)

// AuthzPolicy decides whether an (authenticated) request may proceed. A matching "deny" rule
// always wins; otherwise a matching "allow" rule admits; otherwise Default decides. Refused
// requests get 403 with reason "authz_denied"; the access log names the rule that decided.
type AuthzPolicy struct {
	// Rules are checked in order; every matching rule is considered.
	Rules []AuthzRule `yaml:"rules" json:"rules"`
	// Default is "allow" or "deny" when no rule matches. Default "deny".
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
}

// AuthzRule is one allow or deny rule. It matches when every condition that is set holds; a
// condition with a list holds when any entry matches. A rule must set at least one condition.
type AuthzRule struct {
	// Name identifies the rule in logs and metrics. Required, unique within the policy.
	Name string `yaml:"name" json:"name"`
	// Action is "allow" or "deny". Required.
	Action string `yaml:"action" json:"action"`
	// Consumers matches requests authenticated as one of these consumers. "*" matches any
	// request authenticated as a consumer.
	Consumers []string `yaml:"consumers,omitempty" json:"consumers,omitempty"`
	// Groups matches consumers in one of these groups.
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
	// Claims must all match the verified JWT's claims.
	Claims []ClaimMatch `yaml:"claims,omitempty" json:"claims,omitempty"`
	// Methods matches these request methods.
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	// Paths matches the normalised request path (the one routing used). For exact and prefix
	// matches, ";parameters" at the end of a segment are ignored ("/admin;x" is under "/admin"),
	// since some upstreams strip them; regex matches see the path as it is.
	Paths []PathMatch `yaml:"paths,omitempty" json:"paths,omitempty"`
	// Headers must all match.
	Headers []HeaderMatch `yaml:"headers,omitempty" json:"headers,omitempty"`
	// SourceCIDRs matches the client address (after trusted-proxy resolution).
	SourceCIDRs []string `yaml:"sourceCIDRs,omitempty" json:"sourceCIDRs,omitempty"`
	// Identities matches mesh peers whose workload identity (a SPIFFE ID such as
	// "spiffe://mesh.local/ns/shop/sa/orders") is listed; an entry ending in "/*" matches every ID
	// under that prefix. Only valid in a service's authz, which sidecars enforce.
	Identities []string `yaml:"identities,omitempty" json:"identities,omitempty"`
	// Namespaces matches mesh peers whose identity is in one of these namespaces. Only valid in a
	// service's authz.
	Namespaces []string `yaml:"namespaces,omitempty" json:"namespaces,omitempty"`
	// CEL is a Common Expression Language expression that must be true, for what the other
	// conditions cannot say. It sees request.method, request.path, request.host,
	// request.headers (lower-case names), source.ip, consumer.name, consumer.groups and
	// jwt.claims. An expression that fails at run time does not match (a deny rule's failure
	// denies).
	CEL string `yaml:"cel,omitempty" json:"cel,omitempty"`
}

// ClaimMatch matches one JWT claim: a string claim equal to one of Values, or a list claim
// containing one of them.
type ClaimMatch struct {
	// Name is the claim name, for example "scope" or "roles". Required.
	Name string `yaml:"name" json:"name"`
	// Values are the accepted values. Required.
	Values []string `yaml:"values" json:"values"`
}

// CORSPolicy answers CORS preflight requests and adds CORS headers to responses for allowed
// origins. Requests from other origins are forwarded without CORS headers (browsers then block
// the page from reading the answer).
type CORSPolicy struct {
	// AllowOrigins are the allowed origins: exact ("https://app.example.com"), a wildcard
	// subdomain ("https://*.example.com"), or "*" for any. Required.
	AllowOrigins []string `yaml:"allowOrigins" json:"allowOrigins"`
	// AllowMethods are the methods allowed in preflight. Default GET, HEAD, POST.
	AllowMethods []string `yaml:"allowMethods,omitempty" json:"allowMethods,omitempty"`
	// AllowHeaders are the request headers allowed in preflight. Default: none beyond the
	// CORS-safelisted ones.
	AllowHeaders []string `yaml:"allowHeaders,omitempty" json:"allowHeaders,omitempty"`
	// ExposeHeaders are response headers the page may read.
	ExposeHeaders []string `yaml:"exposeHeaders,omitempty" json:"exposeHeaders,omitempty"`
	// AllowCredentials lets pages send cookies and read credentialed answers. Not allowed with
	// the origin "*".
	AllowCredentials bool `yaml:"allowCredentials,omitempty" json:"allowCredentials,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer. Default 10m.
	MaxAge time.Duration `yaml:"maxAge,omitempty" json:"maxAge,omitempty"`
}

// IPAccess admits or refuses clients by address (after trusted-proxy resolution). A deny entry
// wins; when Allow is set, addresses outside it are refused. Refused requests get 403 with reason
// "ip_denied".
type IPAccess struct {
	// Allow lists the CIDRs (or single addresses) allowed. Default: any.
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	// Deny lists the CIDRs (or single addresses) refused.
	Deny []string `yaml:"deny,omitempty" json:"deny,omitempty"`
}

// SecurityHeaders adds security response headers, unless the upstream set them.
type SecurityHeaders struct {
	// HSTSMaxAge sends Strict-Transport-Security with this max-age on HTTPS responses. Default
	// 0: not sent.
	HSTSMaxAge time.Duration `yaml:"hstsMaxAge,omitempty" json:"hstsMaxAge,omitempty"`
	// HSTSIncludeSubdomains adds includeSubDomains to Strict-Transport-Security.
	HSTSIncludeSubdomains bool `yaml:"hstsIncludeSubdomains,omitempty" json:"hstsIncludeSubdomains,omitempty"`
	// HSTSPreload adds preload to Strict-Transport-Security.
	HSTSPreload bool `yaml:"hstsPreload,omitempty" json:"hstsPreload,omitempty"`
	// ContentTypeNosniff sends "X-Content-Type-Options: nosniff". Default true.
	ContentTypeNosniff *bool `yaml:"contentTypeNosniff,omitempty" json:"contentTypeNosniff,omitempty"`
	// FrameOptions is the X-Frame-Options value: "DENY" (default), "SAMEORIGIN" or "off".
	FrameOptions string `yaml:"frameOptions,omitempty" json:"frameOptions,omitempty"`
	// ReferrerPolicy is the Referrer-Policy value. Default "no-referrer"; "off" sends none.
	ReferrerPolicy string `yaml:"referrerPolicy,omitempty" json:"referrerPolicy,omitempty"`
	// ContentSecurityPolicy is the Content-Security-Policy value. Default: not sent.
	ContentSecurityPolicy string `yaml:"contentSecurityPolicy,omitempty" json:"contentSecurityPolicy,omitempty"`
}

// ListenerSecurity holds a listener's edge security settings.
type ListenerSecurity struct {
	// DefaultDeny refuses (403, reason "authz_denied") requests to routes on this listener that
	// have no authz policy, so a route added without one is closed rather than open. Default false.
	DefaultDeny bool `yaml:"defaultDeny,omitempty" json:"defaultDeny,omitempty"`
	// InternalHeaders are request headers clients may not send; they are removed before routing.
	// Headers meshgate sets itself (X-Meshgate-*, claim and ext_authz headers) are always removed.
	InternalHeaders []string `yaml:"internalHeaders,omitempty" json:"internalHeaders,omitempty"`
}
