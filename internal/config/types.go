// Package config is meshgate's one config model: the types every role (gateway, sidecar, control
// plane) is configured with, their strict decoding from YAML, defaults and whole-file validation.
//
// The doc comment of every field is the reference documentation: docs/config.md is generated from
// this file.
package config

import "time"

// Config is one complete, versioned configuration of a meshgate process.
type Config struct {
	// Version is the schema version of this file. Required; the only supported value is 1.
	Version int `yaml:"version" json:"version"`
	// Admin configures the admin HTTP listener (health, metrics, config API).
	Admin Admin `yaml:"admin" json:"admin"`
	// AccessLog configures the per-request access log.
	AccessLog AccessLog `yaml:"accessLog" json:"accessLog"`
	// Listeners are the sockets meshgate accepts traffic on.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// Routes map requests arriving on listeners to backends, in Gateway API precedence order.
	Routes []Route `yaml:"routes" json:"routes"`
	// Services are the upstream services routes send traffic to.
	Services []Service `yaml:"services" json:"services"`
	// Authenticators are the named ways of establishing who is calling; routes list the ones
	// they accept.
	Authenticators []Authenticator `yaml:"authenticators,omitempty" json:"authenticators,omitempty"`
	// Consumers are the named API clients authentication recognises.
	Consumers []Consumer `yaml:"consumers,omitempty" json:"consumers,omitempty"`
	// Plans are named per-consumer rate limits and quotas that consumers subscribe to.
	Plans []Plan `yaml:"plans,omitempty" json:"plans,omitempty"`
	// Telemetry configures request tracing. Absent: no tracing.
	Telemetry *Telemetry `yaml:"telemetry,omitempty" json:"telemetry,omitempty"`

	// Source records where this config came from, for error messages. It is not part of the file.
	Source Source `yaml:"-" json:"-"`
}

// Admin configures the admin HTTP listener.
type Admin struct {
	// Address is the host:port the admin API listens on. Default "127.0.0.1:9901" (loopback only).
	// Set "off" to disable the admin listener.
	Address string `yaml:"address" json:"address"`
	// Pprof exposes Go's /debug/pprof handlers on the admin listener. Default false.
	Pprof bool `yaml:"pprof" json:"pprof"`
	// TokenEnv names an environment variable holding a bearer token that every admin request
	// must send ("Authorization: Bearer TOKEN"). Required (or TLS with a client CA) when Address
	// is not a loopback address. Default: none.
	TokenEnv string `yaml:"tokenEnv,omitempty" json:"tokenEnv,omitempty"`
	// TLS serves the admin API over HTTPS; with clientCA set, clients must present a
	// certificate signed by it (mTLS).
	TLS *ListenerTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// AuditLog is the file every config change through the admin API or a reload is appended to
	// (who, when, old and new version), one JSON line each. Default "off".
	AuditLog string `yaml:"auditLog,omitempty" json:"auditLog,omitempty"`
}

// AccessLog configures the access log: one JSON line per request.
type AccessLog struct {
	// Path is where access log lines go: "stdout" (default), "stderr", "off", or a file path
	// (opened for append).
	Path string `yaml:"path" json:"path"`
}

// Listener protocols.
const (
	ProtocolHTTP  = "http"  // HTTP/1.1, and HTTP/2 with prior knowledge (h2c) detected by preface.
	ProtocolHTTPS = "https" // TLS with ALPN h2 and http/1.1.
	ProtocolH2C   = "h2c"   // cleartext HTTP/2 with prior knowledge only (gRPC clients).
)

// Listener is one socket that accepts downstream traffic.
type Listener struct {
	// Name identifies the listener; routes refer to it. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Address is the host:port to listen on, for example "0.0.0.0:8080". Required, unique.
	Address string `yaml:"address" json:"address"`
	// Protocol is "http" (HTTP/1.1, plus HTTP/2 prior knowledge), "https" (TLS, ALPN h2 and
	// http/1.1) or "h2c" (cleartext HTTP/2 only). Default "http".
	Protocol string `yaml:"protocol" json:"protocol"`
	// TLS holds certificates and TLS policy. Required when protocol is "https", invalid otherwise.
	TLS *ListenerTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Timeouts bound how long downstream clients may take. Every timeout has a safe default.
	Timeouts ListenerTimeouts `yaml:"timeouts" json:"timeouts"`
	// Limits bound the size of what downstream clients may send.
	Limits ListenerLimits `yaml:"limits" json:"limits"`
	// TrustedProxies lists the CIDRs (or single IPs) of proxies in front of meshgate whose
	// X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are believed.
	// From any other peer these headers are replaced. Default empty: trust nobody.
	TrustedProxies []string `yaml:"trustedProxies,omitempty" json:"trustedProxies,omitempty"`
	// Paths controls how request paths are normalised before matching.
	Paths PathNormalization `yaml:"paths" json:"paths"`
	// Security holds the listener's edge security settings.
	Security ListenerSecurity `yaml:"security" json:"security"`
}

// ListenerTLS configures TLS termination on a listener.
type ListenerTLS struct {
	// Certificates are served by SNI: the first certificate whose names match the client's server
	// name is used; the first certificate is the default when none matches. At least one is
	// required unless ACME is set. Files are reloaded when they change.
	Certificates []Certificate `yaml:"certificates,omitempty" json:"certificates,omitempty"`
	// ACME obtains and renews certificates automatically from an ACME certificate authority
	// (such as Let's Encrypt) for the listed domains; they are served before Certificates.
	ACME *ACME `yaml:"acme,omitempty" json:"acme,omitempty"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"minVersion,omitempty" json:"minVersion,omitempty"`
	// CipherSuites limits the TLS 1.2 cipher suites, by Go name (for example
	// "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"). TLS 1.3 suites are not configurable. Default:
	// Go's secure defaults.
	CipherSuites []string `yaml:"cipherSuites,omitempty" json:"cipherSuites,omitempty"`
	// ClientCA is a PEM file of the certificate authorities client certificates are verified
	// against. When set, clients may present a certificate (see ClientAuth). Relative paths are
	// relative to the config file's directory.
	ClientCA string `yaml:"clientCA,omitempty" json:"clientCA,omitempty"`
	// ClientAuth is "optional" (default with ClientCA: a certificate, when sent, must verify) or
	// "require" (every connection must present one that verifies).
	ClientAuth string `yaml:"clientAuth,omitempty" json:"clientAuth,omitempty"`
}

// ACME configures automatic certificates. The TLS-ALPN-01 challenge is answered on the listener
// itself, so the listener must be reachable on port 443 of the domains (or the CA must be told
// otherwise, as test CAs can be).
type ACME struct {
	// Domains are the names certificates are obtained for. Required.
	Domains []string `yaml:"domains" json:"domains"`
	// Email is the account contact the CA may write to about expiring certificates.
	Email string `yaml:"email,omitempty" json:"email,omitempty"`
	// DirectoryURL is the CA's ACME directory. Default Let's Encrypt's production directory.
	DirectoryURL string `yaml:"directoryURL,omitempty" json:"directoryURL,omitempty"`
	// CARoots is a PEM file of roots trusted for the CA's own HTTPS endpoint, for private CAs.
	// Default: the system roots.
	CARoots string `yaml:"caRoots,omitempty" json:"caRoots,omitempty"`
	// Storage is the directory certificates, keys and the account are kept in (mode 0700).
	// Relative paths are relative to the config file's directory. Default "acme".
	Storage string `yaml:"storage,omitempty" json:"storage,omitempty"`
	// AgreeToTerms accepts the CA's terms of service. Required to be true.
	AgreeToTerms bool `yaml:"agreeToTerms" json:"agreeToTerms"`
	// Challenge is how the CA checks control of the domains: "tls-alpn-01" (default: answered on
	// this listener, which must then be reachable on port 443 of the domains) or "http-01"
	// (answered on HTTPListener, which must be reachable on port 80 of the domains).
	Challenge string `yaml:"challenge,omitempty" json:"challenge,omitempty"`
	// HTTPListener names the plain-HTTP listener that answers HTTP-01 challenges
	// (/.well-known/acme-challenge/...) before routing. Required with challenge "http-01".
	HTTPListener string `yaml:"httpListener,omitempty" json:"httpListener,omitempty"`
}

// ACME challenge types (ACME.Challenge).
const (
	ACMETLSALPN01 = "tls-alpn-01"
	ACMEHTTP01    = "http-01"
)

// Certificate is a certificate chain and its private key, both PEM files.
type Certificate struct {
	// Cert is the path of the PEM certificate chain, leaf first. Relative paths are relative to
	// the config file's directory.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the path of the PEM private key. Relative paths are relative to the config file's directory.
	Key string `yaml:"key" json:"key"`
}

// ListenerTimeouts bound the time downstream clients may take.
type ListenerTimeouts struct {
	// ReadHeader is how long a client may take to send a complete request head. Default 10s.
	ReadHeader time.Duration `yaml:"readHeader,omitempty" json:"readHeader,omitempty"`
	// Idle closes a keep-alive connection that carries no request for this long. Default 60s.
	Idle time.Duration `yaml:"idle,omitempty" json:"idle,omitempty"`
	// Request bounds a whole exchange, from the first byte of the request to the last byte of the
	// response, unless the route's timeout says otherwise. Upgraded connections (WebSocket) are
	// exempt once upgraded. Default 5m.
	Request time.Duration `yaml:"request,omitempty" json:"request,omitempty"`
}

// ListenerLimits bound what downstream clients may send.
type ListenerLimits struct {
	// MaxHeaderBytes is the largest request head accepted, in bytes; larger heads get 431.
	// Default 65536.
	MaxHeaderBytes int `yaml:"maxHeaderBytes,omitempty" json:"maxHeaderBytes,omitempty"`
	// MaxHeaderCount is the most header fields a request may carry; more get 431. Default 100.
	MaxHeaderCount int `yaml:"maxHeaderCount,omitempty" json:"maxHeaderCount,omitempty"`
	// MaxBodyBytes is the largest request body accepted, in bytes; larger bodies get 413.
	// Default 10485760 (10 MiB). Set -1 for no limit.
	MaxBodyBytes int64 `yaml:"maxBodyBytes,omitempty" json:"maxBodyBytes,omitempty"`
	// MaxConnections is the most downstream connections open at once; further connections are
	// closed at once (reset), unserved, and counted in meshgate_downstream_connections_shed_total.
	// Default 10000.
	MaxConnections int `yaml:"maxConnections,omitempty" json:"maxConnections,omitempty"`
	// MaxConcurrentStreams is the most concurrent HTTP/2 streams per connection. Default 250.
	MaxConcurrentStreams uint32 `yaml:"maxConcurrentStreams,omitempty" json:"maxConcurrentStreams,omitempty"`
	// MaxActiveRequests is the most requests the listener serves at once, over all connections;
	// beyond it requests are shed at once with 503 and reason "overloaded". Default 0: no limit.
	MaxActiveRequests int `yaml:"maxActiveRequests,omitempty" json:"maxActiveRequests,omitempty"`
	// AllowGetBody accepts GET and HEAD requests that carry a body (some search and GraphQL
	// clients send one), forwarding it upstream. Default false: they are refused with 400 and
	// reason "body_not_allowed", because a back end that ignores such a body reads it as the next
	// request on a shared connection (request smuggling). Turn it on only when every upstream of
	// the listener reads the bodies of GET requests.
	AllowGetBody bool `yaml:"allowGetBody,omitempty" json:"allowGetBody,omitempty"`
}

// PathNormalization controls path normalisation before routing. Dot segments are always resolved
// and unreserved percent-escapes always decoded.
type PathNormalization struct {
	// KeepSlashes turns off merging of repeated slashes ("//a" stays "//a"). Default false: merge.
	KeepSlashes bool `yaml:"keepSlashes,omitempty" json:"keepSlashes,omitempty"`
	// AllowEncodedSlash accepts "%2F" and "%5C" in paths (left encoded). Default false: such
	// requests get 400 with reason "bad_path".
	AllowEncodedSlash bool `yaml:"allowEncodedSlash,omitempty" json:"allowEncodedSlash,omitempty"`
}

// Route maps matching requests to backends, with optional filters. Among all routes that match a
// request the most specific wins, following the Gateway API HTTPRoute precedence rules.
type Route struct {
	// Name identifies the route in logs, metrics and errors. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Listeners names the listeners this route serves. Default: all listeners.
	Listeners []string `yaml:"listeners,omitempty" json:"listeners,omitempty"`
	// Service attaches the route to calls made to this mesh service (a route whose parent is a
	// service, as in the Gateway API's GAMMA): sidecars apply it to outbound calls to the service
	// instead of serving it on listeners. It names a service of this config that has discovery.
	// Default: none (the route is served on listeners).
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Hosts are the hostnames this route serves: exact names ("api.example.com") or a leading
	// wildcard label ("*.example.org", which matches one or more labels before "example.org").
	// Matching ignores case and any port. Default: every host.
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// Match lists alternatives: the route matches when any entry matches, and an entry matches
	// when all of its fields do. Default: one entry matching every path (prefix "/").
	Match []RouteMatch `yaml:"match,omitempty" json:"match,omitempty"`
	// Filters run in order on matching requests and their responses.
	Filters []Filter `yaml:"filters,omitempty" json:"filters,omitempty"`
	// Backends receive the traffic, split by weight. Required unless a filter answers the request
	// itself (redirect or respond).
	Backends []Backend `yaml:"backends,omitempty" json:"backends,omitempty"`
	// Timeout bounds the whole exchange for this route, overriding the listener's request timeout.
	// Default: the listener's. Streaming routes (gRPC streams, SSE) may need "0s", meaning no limit.
	Timeout *time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Retry sends a failed request again, within a retry budget. Default: no retries (a request on
	// a pooled connection the upstream had closed is still sent again once).
	Retry *RetryPolicy `yaml:"retry,omitempty" json:"retry,omitempty"`
	// RateLimit admits requests at a bounded rate and answers the rest with 429.
	RateLimit *RateLimitPolicy `yaml:"rateLimit,omitempty" json:"rateLimit,omitempty"`
	// Fault injects delays and failures into a share of requests, for testing resilience.
	Fault *FaultPolicy `yaml:"fault,omitempty" json:"fault,omitempty"`
	// Mirror sends a copy of a share of requests to another service; its answers are ignored.
	Mirror *MirrorPolicy `yaml:"mirror,omitempty" json:"mirror,omitempty"`
	// Auth authenticates callers. Default: none (anonymous).
	Auth *RouteAuth `yaml:"auth,omitempty" json:"auth,omitempty"`
	// Authz decides which callers may use the route. Default: all (unless the listener says
	// defaultDeny).
	Authz *AuthzPolicy `yaml:"authz,omitempty" json:"authz,omitempty"`
	// IPAccess admits or refuses clients by address.
	IPAccess *IPAccess `yaml:"ipAccess,omitempty" json:"ipAccess,omitempty"`
	// CORS answers cross-origin preflights and marks allowed cross-origin answers.
	CORS *CORSPolicy `yaml:"cors,omitempty" json:"cors,omitempty"`
	// MaxBodyBytes is the largest request body accepted on this route; larger bodies get 413.
	// Default: the listener's limit. It may only lower that limit.
	MaxBodyBytes int64 `yaml:"maxBodyBytes,omitempty" json:"maxBodyBytes,omitempty"`
	// StreamIdleTimeout ends an exchange when neither the request nor the response body moves
	// for this long (504 with reason "stream_idle_timeout" before the response starts, a reset
	// after). Default 5m; "0s" turns it off.
	StreamIdleTimeout *time.Duration `yaml:"streamIdleTimeout,omitempty" json:"streamIdleTimeout,omitempty"`
}

// FaultPolicy injects faults: a delay, an abort, or both (the delay first). Meant for testing how
// clients and services cope; every injected abort carries reason "fault_injected".
type FaultPolicy struct {
	// Delay holds a share of requests back before forwarding them.
	Delay *FaultDelay `yaml:"delay,omitempty" json:"delay,omitempty"`
	// Abort answers a share of requests with an error instead of forwarding them.
	Abort *FaultAbort `yaml:"abort,omitempty" json:"abort,omitempty"`
	// Header, when set, limits injection to requests that carry this header (any value), so a
	// test can opt in per request.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
}

// FaultDelay delays a share of requests.
type FaultDelay struct {
	// Percent is the share of requests delayed, 0 to 100. Required.
	Percent float64 `yaml:"percent" json:"percent"`
	// Duration is how long each is delayed. Required.
	Duration time.Duration `yaml:"duration" json:"duration"`
}

// FaultAbort fails a share of requests.
type FaultAbort struct {
	// Percent is the share of requests aborted, 0 to 100. Required.
	Percent float64 `yaml:"percent" json:"percent"`
	// Status is the HTTP status they get, 200 to 599. Required unless GRPCStatus is set.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// GRPCStatus answers with this gRPC status code (a name such as "unavailable", or a number) in a
	// trailers-only response. Set exactly one of Status and GRPCStatus.
	GRPCStatus string `yaml:"grpcStatus,omitempty" json:"grpcStatus,omitempty"`
}

// MirrorPolicy copies requests to a shadow service, fire and forget: the client's response never
// waits for the shadow, and the shadow's failures never reach the client.
type MirrorPolicy struct {
	// Service names the service that receives the copies. Required.
	Service string `yaml:"service" json:"service"`
	// Percent is the share of requests copied, above 0 and up to 100. Default 100. (To copy
	// nothing, remove the mirror block.)
	Percent float64 `yaml:"percent,omitempty" json:"percent,omitempty"`
	// MaxBodyBytes is the largest request body copied; requests with larger bodies are not
	// mirrored. Default 65536.
	MaxBodyBytes int `yaml:"maxBodyBytes,omitempty" json:"maxBodyBytes,omitempty"`
	// MaxInFlight bounds the copies in flight at once; beyond it copies are dropped. Default 100.
	MaxInFlight int `yaml:"maxInFlight,omitempty" json:"maxInFlight,omitempty"`
}

// Retry conditions: what kind of failure allows a request to be sent again.
const (
	RetryOnConnectFailure  = "connect_failure"  // no connection to the endpoint could be made.
	RetryOnRefusedStream   = "refused_stream"   // an HTTP/2 upstream refused the stream before processing it.
	RetryOnReset           = "reset"            // the upstream closed or reset the connection before responding.
	RetryOnGatewayError    = "gateway_error"    // the upstream answered 502, 503 or 504.
	RetryOn5xx             = "5xx"              // the upstream answered any 5xx, or reset, or could not be reached.
	RetryOnRetriableStatus = "retriable_status" // the upstream answered one of Statuses.
	RetryOnRetriableGRPC   = "retriable_grpc"   // a gRPC response ended with one of GRPCStatuses.
)

// RetryPolicy says when and how a failed request is sent again. A retry goes to a different
// endpoint when the service has more than one, after an exponential backoff with full jitter, and
// only while the service's retry budget allows.
type RetryPolicy struct {
	// Attempts is the most times a request is sent, the first included. Default 2; at most 10.
	Attempts int `yaml:"attempts,omitempty" json:"attempts,omitempty"`
	// On lists the conditions that allow a retry: "connect_failure", "refused_stream", "reset",
	// "gateway_error", "5xx", "retriable_status", "retriable_grpc". Default
	// [connect_failure, refused_stream, reset, gateway_error].
	On []string `yaml:"on,omitempty" json:"on,omitempty"`
	// Statuses are the HTTP status codes that allow a retry when On lists "retriable_status".
	Statuses []int `yaml:"statuses,omitempty" json:"statuses,omitempty"`
	// GRPCStatuses are the gRPC status codes (as names such as "unavailable" or numbers such as
	// "14") that allow a retry when On lists "retriable_grpc".
	GRPCStatuses []string `yaml:"grpcStatuses,omitempty" json:"grpcStatuses,omitempty"`
	// PerTryTimeout bounds each attempt; an attempt that runs out is retried like a gateway error
	// (504). Default: none beyond the route's timeout.
	PerTryTimeout time.Duration `yaml:"perTryTimeout,omitempty" json:"perTryTimeout,omitempty"`
	// Backoff spaces retries out.
	Backoff RetryBackoff `yaml:"backoff" json:"backoff"`
	// Budget caps retries across all requests to the service, so a failing backend never sees a
	// retry storm.
	Budget RetryBudget `yaml:"budget" json:"budget"`
	// NonIdempotent allows retrying methods that are not idempotent (POST, PATCH, CONNECT). Default
	// false: only GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried, and requests of any method
	// that provably never reached the upstream (connect failure, refused stream).
	NonIdempotent bool `yaml:"nonIdempotent,omitempty" json:"nonIdempotent,omitempty"`
	// BufferBytes is the largest request body kept for sending again; a request whose body is
	// larger is not retried once its body has started to flow. Default 65536.
	BufferBytes int `yaml:"bufferBytes,omitempty" json:"bufferBytes,omitempty"`
}

// RetryBackoff is an exponential backoff with full jitter: before retry n the wait is random in
// [0, min(Max, Base × 2^(n-1))]. A Retry-After header on a 503 or 429 raises the wait to what it
// asks, up to Max.
type RetryBackoff struct {
	// Base is the first backoff interval. Default 25ms.
	Base time.Duration `yaml:"base,omitempty" json:"base,omitempty"`
	// Max caps every wait. Default 250ms.
	Max time.Duration `yaml:"max,omitempty" json:"max,omitempty"`
}

// RetryBudget lets retries add at most Percent to the request rate of a service, but always allows
// MinPerSecond retries per second. A retry the budget refuses is not sent; the failure is returned.
type RetryBudget struct {
	// Percent is the retries allowed as a percentage of requests over the last 10 seconds. Default 20.
	Percent float64 `yaml:"percent,omitempty" json:"percent,omitempty"`
	// MinPerSecond is the retries per second always allowed, whatever the request rate. Default 3.
	MinPerSecond float64 `yaml:"minPerSecond,omitempty" json:"minPerSecond,omitempty"`
}

// RateLimitPolicy admits requests at a bounded rate. Requests over the limit get 429 with
// Retry-After and the IETF RateLimit-Policy and RateLimit headers, reason "rate_limited". Set Local,
// Global or both (both must admit).
type RateLimitPolicy struct {
	// Local limits each meshgate process on its own, in memory.
	Local *LocalRateLimit `yaml:"local,omitempty" json:"local,omitempty"`
	// Global limits every replica together, through a shared Redis server.
	Global *GlobalRateLimit `yaml:"global,omitempty" json:"global,omitempty"`
}

// RateLimitKey says what a limit counts separately. Set at most one field; with none set, the whole
// route shares one limit.
type RateLimitKey struct {
	// ClientIP counts each client address (after trusted-proxy resolution) separately.
	ClientIP bool `yaml:"clientIP,omitempty" json:"clientIP,omitempty"`
	// Header counts each value of this request header separately; requests without it share one
	// limit.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Consumer counts each authenticated consumer separately; anonymous requests share one
	// limit.
	Consumer bool `yaml:"consumer,omitempty" json:"consumer,omitempty"`
}

// LocalRateLimit is a token bucket per key in this process.
type LocalRateLimit struct {
	// Rate is the sustained rate in requests per second. Required, above 0.
	Rate float64 `yaml:"rate" json:"rate"`
	// Burst is how many requests may be admitted at once above the sustained rate. Default: Rate
	// rounded up, at least 1.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Key says what is counted separately. Default: the route as a whole.
	Key RateLimitKey `yaml:"key" json:"key"`
	// MaxKeys bounds the keys tracked at once; the least recently used are forgotten. Default 100000.
	MaxKeys int `yaml:"maxKeys,omitempty" json:"maxKeys,omitempty"`
}

// GlobalRateLimit is a limit shared by every replica through Redis, computed atomically in Redis
// with GCRA (the generic cell rate algorithm).
type GlobalRateLimit struct {
	// Redis is the address (host:port) of the Redis server. Required.
	Redis string `yaml:"redis" json:"redis"`
	// PasswordEnv names an environment variable holding the Redis password, so the secret never
	// sits in the config. Default: no password.
	PasswordEnv string `yaml:"passwordEnv,omitempty" json:"passwordEnv,omitempty"`
	// DB is the Redis database number. Default 0.
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// Rate is the sustained rate in requests per second across all replicas. Required, above 0.
	Rate float64 `yaml:"rate" json:"rate"`
	// Burst is how many requests may be admitted at once above the sustained rate. Default: Rate
	// rounded up, at least 1.
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Key says what is counted separately. Default: the route as a whole.
	Key RateLimitKey `yaml:"key" json:"key"`
	// Timeout bounds one Redis round trip. Default 50ms.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// FailOpen admits requests when Redis cannot answer in time. Default false: such requests get
	// 503 with reason "rate_limit_unavailable".
	FailOpen bool `yaml:"failOpen,omitempty" json:"failOpen,omitempty"`
}

// RouteMatch is one set of conditions; all that are set must hold.
type RouteMatch struct {
	// Path matches the normalised request path. Default: prefix "/".
	Path *PathMatch `yaml:"path,omitempty" json:"path,omitempty"`
	// Method matches the request method exactly, for example "GET". Default: any method.
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	// Headers must all match.
	Headers []HeaderMatch `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Query parameters must all match.
	Query []QueryMatch `yaml:"query,omitempty" json:"query,omitempty"`
}

// PathMatch matches the request path. Exactly one field must be set. The path matched is the
// normalised one without ";parameters" at the end of its segments ("/admin;x" matches as
// "/admin"), since some upstreams strip them; the path forwarded keeps them.
type PathMatch struct {
	// Exact matches the whole path, for example "/login".
	Exact string `yaml:"exact,omitempty" json:"exact,omitempty"`
	// Prefix matches whole path segments: "/users" matches "/users" and "/users/7", not "/usersx".
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Regex is an RE2 regular expression that must match the whole path.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
}

// HeaderMatch matches one request header. Set exactly one of Value, Regex or Present.
type HeaderMatch struct {
	// Name is the header name, matched without regard to case. Required.
	Name string `yaml:"name" json:"name"`
	// Value must equal the header's value exactly.
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// Regex is an RE2 regular expression that must match the whole value.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// Present matches when the header is present, whatever its value.
	Present bool `yaml:"present,omitempty" json:"present,omitempty"`
}

// QueryMatch matches one query parameter (its first occurrence, after percent-decoding). Set
// exactly one of Value, Regex or Present.
type QueryMatch struct {
	// Name is the parameter name, matched exactly. Required.
	Name string `yaml:"name" json:"name"`
	// Value must equal the parameter's value exactly.
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// Regex is an RE2 regular expression that must match the whole value.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// Present matches when the parameter is present, whatever its value.
	Present bool `yaml:"present,omitempty" json:"present,omitempty"`
}

// Filter is one step applied to matching requests. Exactly one field must be set.
type Filter struct {
	// RequestHeaders edits the request headers sent upstream.
	RequestHeaders *HeaderFilter `yaml:"requestHeaders,omitempty" json:"requestHeaders,omitempty"`
	// ResponseHeaders edits the response headers sent downstream.
	ResponseHeaders *HeaderFilter `yaml:"responseHeaders,omitempty" json:"responseHeaders,omitempty"`
	// Rewrite changes the path or host sent upstream.
	Rewrite *Rewrite `yaml:"rewrite,omitempty" json:"rewrite,omitempty"`
	// Redirect answers with a redirect instead of forwarding.
	Redirect *Redirect `yaml:"redirect,omitempty" json:"redirect,omitempty"`
	// Respond answers with a fixed response instead of forwarding.
	Respond *Respond `yaml:"respond,omitempty" json:"respond,omitempty"`
	// SecurityHeaders adds HSTS and other security headers to responses.
	SecurityHeaders *SecurityHeaders `yaml:"securityHeaders,omitempty" json:"securityHeaders,omitempty"`
}

// HeaderFilter edits headers. Remove runs first, then Set, then Add.
type HeaderFilter struct {
	// Set replaces each named header with the given value (adding it when absent).
	Set map[string]string `yaml:"set,omitempty" json:"set,omitempty"`
	// Add appends a field with the given value, keeping existing ones.
	Add map[string]string `yaml:"add,omitempty" json:"add,omitempty"`
	// Remove deletes every field with one of these names.
	Remove []string `yaml:"remove,omitempty" json:"remove,omitempty"`
}

// Rewrite changes the request sent upstream. Path and PathPrefix are mutually exclusive.
type Rewrite struct {
	// PathPrefix replaces the part of the path matched by the route's prefix match with this value
	// ("/users/7" with prefix "/users" and pathPrefix "/" becomes "/7"). The route's matches must
	// all be prefix matches.
	PathPrefix string `yaml:"pathPrefix,omitempty" json:"pathPrefix,omitempty"`
	// Path replaces the whole path.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Host replaces the Host header (HTTP/2: :authority) sent upstream.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
}

// Redirect answers with a redirect built from the request, changing the parts that are set.
type Redirect struct {
	// Scheme is "http" or "https". Default: the request's scheme.
	Scheme string `yaml:"scheme,omitempty" json:"scheme,omitempty"`
	// Host replaces the host name. Default: the request's host.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Port replaces the port. Default: the request's port, or the scheme's default when the
	// scheme changes.
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// Path replaces the whole path. Default: the request's path.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// PathPrefix replaces the matched prefix, as in Rewrite. Mutually exclusive with Path.
	PathPrefix string `yaml:"pathPrefix,omitempty" json:"pathPrefix,omitempty"`
	// Status is 301, 302, 303, 307 or 308. Default 302.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
}

// Respond answers with a fixed response.
type Respond struct {
	// Status is the status code. Default 200.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Body is the response body. Default empty.
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
	// ContentType is the Content-Type of Body. Default "text/plain; charset=utf-8" when Body is set.
	ContentType string `yaml:"contentType,omitempty" json:"contentType,omitempty"`
}

// Backend is one weighted destination of a route.
type Backend struct {
	// Service names the service that receives this share of the traffic. Required.
	Service string `yaml:"service" json:"service"`
	// Weight is this backend's share relative to the route's other backends. 0 sends no traffic.
	// Default 1.
	Weight *int `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// Service protocols: how meshgate talks to a service's endpoints.
const (
	UpstreamHTTP1 = "http1" // HTTP/1.1 with keep-alive connection pooling.
	UpstreamHTTP2 = "http2" // cleartext HTTP/2 with prior knowledge (h2c).
	UpstreamGRPC  = "grpc"  // gRPC: cleartext HTTP/2, trailers preserved.
)

// Service is an upstream service: a set of endpoints and how to reach them.
type Service struct {
	// Name identifies the service; routes refer to it. Required, unique.
	Name string `yaml:"name" json:"name"`
	// Protocol is "http1" (default), "http2" or "grpc".
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
	// Endpoints are the service's instances. At least one is required.
	Endpoints []Endpoint `yaml:"endpoints" json:"endpoints"`
	// LoadBalancer chooses an endpoint for each request.
	LoadBalancer LoadBalancer `yaml:"loadBalancer" json:"loadBalancer"`
	// HealthCheck, when set, probes every endpoint actively; failing endpoints leave rotation
	// until they pass again.
	HealthCheck *HealthCheck `yaml:"healthCheck,omitempty" json:"healthCheck,omitempty"`
	// Pool bounds the upstream connections kept to each endpoint.
	Pool ConnectionPool `yaml:"pool" json:"pool"`
	// CircuitBreaker bounds the load meshgate puts on the service and fails fast beyond it.
	CircuitBreaker *CircuitBreaker `yaml:"circuitBreaker,omitempty" json:"circuitBreaker,omitempty"`
	// OutlierDetection ejects endpoints that fail more than their peers, for a while. Without it,
	// a default detector still ejects an endpoint after 3 connect failures in a row, for 5s
	// growing by 5s with each repeat ejection up to 300s, at most 10% of the endpoints at once
	// (one always may) and never the last usable one; 5xx answers eject nothing by default.
	OutlierDetection *OutlierDetection `yaml:"outlierDetection,omitempty" json:"outlierDetection,omitempty"`
	// AdaptiveConcurrency limits the requests in flight to the service to what its observed
	// latency says it can take, without hand-tuned numbers; the rest get 503 with reason
	// "concurrency_limited". Default: off.
	AdaptiveConcurrency *AdaptiveConcurrency `yaml:"adaptiveConcurrency,omitempty" json:"adaptiveConcurrency,omitempty"`
	// Discovery takes the service's endpoints from the workloads registered with the control
	// plane (`meshgate control`) under a mesh service name, in addition to any listed Endpoints.
	// With Discovery, Endpoints may be empty. A gateway running from a file has no registry: it
	// uses only the listed endpoints. Default: none (endpoints are static).
	Discovery *ServiceDiscovery `yaml:"discovery,omitempty" json:"discovery,omitempty"`
	// Authz decides which workload identities may call this mesh service; it is enforced by the
	// service's sidecars on inbound calls. Its rules may match identities and namespaces as well
	// as requests. Default: none (every authenticated mesh peer).
	Authz *AuthzPolicy `yaml:"authz,omitempty" json:"authz,omitempty"`
	// Mesh makes calls to the service mutual TLS with workload identities, to the sidecars in
	// front of its workloads. The control plane sets it for services whose workloads run a
	// sidecar. Default: none (plain connections to the endpoints).
	Mesh *ServiceMesh `yaml:"mesh,omitempty" json:"mesh,omitempty"`
	// Inbound configures how the service's sidecars accept calls. Default: mutual TLS only.
	Inbound *ServiceInbound `yaml:"inbound,omitempty" json:"inbound,omitempty"`
}

// ServiceDiscovery names the registered mesh service a service's endpoints come from.
type ServiceDiscovery struct {
	// Service is the mesh service name workloads register under. Default: the service's name.
	Service string `yaml:"service,omitempty" json:"service,omitempty"`
	// Namespace is the mesh namespace of the service. Default "default".
	Namespace string `yaml:"namespace,omitempty" json:"namespace,omitempty"`
	// Port is the name of the registered port traffic goes to. Default: a workload's only port;
	// required when workloads register several.
	Port string `yaml:"port,omitempty" json:"port,omitempty"`
}

// AdaptiveConcurrency is a gradient concurrency limiter (as in Netflix's concurrency-limits and
// Envoy's adaptive concurrency filter): every SampleWindow it compares the recent latency with the
// service's baseline latency and shrinks the limit when requests queue, growing it again when
// they do not. The baseline is measured at start and about every 30s by briefly holding the
// requests in flight to MinLimit (the excess is shed meanwhile), as Envoy does.
type AdaptiveConcurrency struct {
	// InitialLimit is the limit to start from. Default 20.
	InitialLimit int `yaml:"initialLimit,omitempty" json:"initialLimit,omitempty"`
	// MinLimit is the lowest the limit goes. Default 3.
	MinLimit int `yaml:"minLimit,omitempty" json:"minLimit,omitempty"`
	// MaxLimit is the highest the limit goes. Default 1000.
	MaxLimit int `yaml:"maxLimit,omitempty" json:"maxLimit,omitempty"`
	// SampleWindow is how often the limit is recomputed. Default 100ms.
	SampleWindow time.Duration `yaml:"sampleWindow,omitempty" json:"sampleWindow,omitempty"`
	// Tolerance is how much slower than usual recent requests may be before the limit shrinks,
	// as a ratio (1.5 means 50% slower). Default 1.5.
	Tolerance float64 `yaml:"tolerance,omitempty" json:"tolerance,omitempty"`
}

// CircuitBreaker bounds a service's load the way Envoy's circuit breakers do: over a threshold a
// request fails at once with 503 and reason "circuit_open". It also opens after consecutive
// failures, and then lets probe requests through (half-open) to decide when to close.
type CircuitBreaker struct {
	// MaxConnections is the most upstream connections open to the service at once. Default 1024.
	MaxConnections int `yaml:"maxConnections,omitempty" json:"maxConnections,omitempty"`
	// MaxPendingRequests is the most requests waiting for a connection at once. Default 1024.
	MaxPendingRequests int `yaml:"maxPendingRequests,omitempty" json:"maxPendingRequests,omitempty"`
	// MaxRequests is the most requests in flight to the service at once. Default 1024.
	MaxRequests int `yaml:"maxRequests,omitempty" json:"maxRequests,omitempty"`
	// MaxRetries is the most retries in flight to the service at once. Default 3.
	MaxRetries int `yaml:"maxRetries,omitempty" json:"maxRetries,omitempty"`
	// ConsecutiveFailures opens the breaker after this many failures in a row (connect failures,
	// resets, timeouts and 5xx answers). Default 0: off.
	ConsecutiveFailures int `yaml:"consecutiveFailures,omitempty" json:"consecutiveFailures,omitempty"`
	// OpenFor is how long an opened breaker rejects everything before it lets probes through.
	// Default 10s.
	OpenFor time.Duration `yaml:"openFor,omitempty" json:"openFor,omitempty"`
	// HalfOpenRequests is how many probe requests a half-open breaker lets through; they all must
	// succeed to close it. Default 1.
	HalfOpenRequests int `yaml:"halfOpenRequests,omitempty" json:"halfOpenRequests,omitempty"`
}

// OutlierDetection ejects failing endpoints from load balancing, as Envoy's outlier detection
// does. Ejection time grows with each repeat ejection; at most MaxEjectionPercent of endpoints are
// out at once; below PanicThreshold percent of usable endpoints all endpoints are used again.
type OutlierDetection struct {
	// Consecutive5xx ejects an endpoint after this many 5xx answers (or connect failures and
	// resets) in a row. Default 5; 0 turns it off.
	Consecutive5xx *int `yaml:"consecutive5xx,omitempty" json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors ejects an endpoint after this many 502, 503 or 504 answers (or
	// connect failures and resets) in a row. Default 0: off.
	ConsecutiveGatewayErrors int `yaml:"consecutiveGatewayErrors,omitempty" json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveConnectFailures ejects an endpoint after this many attempts in a row that could
	// not connect to it (refused, unreachable or timed out connecting). Default 3; 0 turns it off.
	ConsecutiveConnectFailures *int `yaml:"consecutiveConnectFailures,omitempty" json:"consecutiveConnectFailures,omitempty"`
	// SuccessRate ejects endpoints whose success rate falls well below their peers'.
	SuccessRate *SuccessRateOutlier `yaml:"successRate,omitempty" json:"successRate,omitempty"`
	// Interval is how often ejections are reviewed and success rates computed. Default 10s.
	Interval time.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// BaseEjectionTime is the first ejection's length; the n-th ejection lasts n times as long.
	// Default 30s.
	BaseEjectionTime time.Duration `yaml:"baseEjectionTime,omitempty" json:"baseEjectionTime,omitempty"`
	// MaxEjectionTime caps an ejection's length. Default 300s.
	MaxEjectionTime time.Duration `yaml:"maxEjectionTime,omitempty" json:"maxEjectionTime,omitempty"`
	// MaxEjectionPercent is the most endpoints out at once, as a percentage (at least one endpoint
	// may always be ejected). Default 10.
	MaxEjectionPercent int `yaml:"maxEjectionPercent,omitempty" json:"maxEjectionPercent,omitempty"`
	// PanicThreshold: when fewer than this percentage of endpoints are usable (healthy and not
	// ejected), load balancing uses all endpoints again. Default 50; 0 turns panic mode off.
	PanicThreshold *int `yaml:"panicThreshold,omitempty" json:"panicThreshold,omitempty"`
}

// SuccessRateOutlier ejects endpoints whose success rate over an interval is below the mean of
// all endpoints' rates minus StdevFactor standard deviations.
type SuccessRateOutlier struct {
	// MinimumHosts is how many endpoints must have enough requests for the rule to run. Default 5.
	MinimumHosts int `yaml:"minimumHosts,omitempty" json:"minimumHosts,omitempty"`
	// RequestVolume is the requests an endpoint needs in an interval to be judged. Default 100.
	RequestVolume int `yaml:"requestVolume,omitempty" json:"requestVolume,omitempty"`
	// StdevFactor is how many standard deviations below the mean ejects. Default 1.9.
	StdevFactor float64 `yaml:"stdevFactor,omitempty" json:"stdevFactor,omitempty"`
}

// Endpoint is one instance of a service.
type Endpoint struct {
	// Address is the endpoint's host:port. Required.
	Address string `yaml:"address" json:"address"`
	// Weight is the endpoint's share of traffic relative to its peers. Default 1.
	Weight int `yaml:"weight,omitempty" json:"weight,omitempty"`
}

// Load-balancing policies.
const (
	LBRoundRobin   = "round_robin"   // smooth weighted round robin.
	LBLeastRequest = "least_request" // power of two random choices, fewer in-flight requests wins.
	LBRingHash     = "ring_hash"     // consistent hashing on a ring (Ketama-style).
	LBMaglev       = "maglev"        // consistent hashing with Maglev's lookup table.
	LBRandom       = "random"        // weighted random.
)

// LoadBalancer chooses an endpoint for each request.
type LoadBalancer struct {
	// Policy is "round_robin" (default), "least_request", "ring_hash", "maglev" or "random".
	Policy string `yaml:"policy,omitempty" json:"policy,omitempty"`
	// Hash says what consistent-hashing policies hash on. Required for ring_hash and maglev,
	// invalid for the others.
	Hash *HashOn `yaml:"hash,omitempty" json:"hash,omitempty"`
}

// HashOn names the request property a consistent-hashing policy hashes. Exactly one field must be set.
// A request without the property is hashed on a random value.
type HashOn struct {
	// Header hashes the value of this request header.
	Header string `yaml:"header,omitempty" json:"header,omitempty"`
	// Cookie hashes the value of this cookie.
	Cookie string `yaml:"cookie,omitempty" json:"cookie,omitempty"`
	// SourceIP hashes the client's IP address (after trusted-proxy resolution).
	SourceIP bool `yaml:"sourceIP,omitempty" json:"sourceIP,omitempty"`
}

// HealthCheck probes endpoints actively. Exactly one of HTTP or TCP must be set.
type HealthCheck struct {
	// HTTP probes with an HTTP GET and expects a 2xx (or one of ExpectedStatuses).
	HTTP *HTTPHealthCheck `yaml:"http,omitempty" json:"http,omitempty"`
	// TCP probes by opening a TCP connection. It has no settings: write "tcp: {}".
	TCP *TCPHealthCheck `yaml:"tcp,omitempty" json:"tcp,omitempty"`
	// Interval is the time between probes of one endpoint. Default 5s.
	Interval time.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	// Timeout bounds one probe. Default 2s; must be less than Interval.
	Timeout time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// UnhealthyThreshold is how many consecutive failed probes take an endpoint out. Default 3.
	UnhealthyThreshold int `yaml:"unhealthyThreshold,omitempty" json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold is how many consecutive passed probes bring an endpoint back. Default 2.
	HealthyThreshold int `yaml:"healthyThreshold,omitempty" json:"healthyThreshold,omitempty"`
}

// HTTPHealthCheck is an HTTP probe.
type HTTPHealthCheck struct {
	// Path is the request path. Default "/".
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Host is the Host header sent. Default: the endpoint address.
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// ExpectedStatuses are the statuses that pass. Default: any 2xx.
	ExpectedStatuses []int `yaml:"expectedStatuses,omitempty" json:"expectedStatuses,omitempty"`
}

// TCPHealthCheck is a TCP connect probe.
type TCPHealthCheck struct{}

// ConnectionPool bounds the upstream connections kept to each endpoint of a service.
type ConnectionPool struct {
	// MaxIdlePerEndpoint is the most idle keep-alive connections kept per endpoint. Default 256.
	MaxIdlePerEndpoint int `yaml:"maxIdlePerEndpoint,omitempty" json:"maxIdlePerEndpoint,omitempty"`
	// MaxConnsPerEndpoint is the most connections open to one endpoint at once; requests beyond it
	// wait for a free connection until the route's timeout. Default 1024. (HTTP/2 services
	// multiplex requests over few connections.)
	MaxConnsPerEndpoint int `yaml:"maxConnsPerEndpoint,omitempty" json:"maxConnsPerEndpoint,omitempty"`
	// IdleTimeout closes a pooled connection idle for this long. Default 90s.
	IdleTimeout time.Duration `yaml:"idleTimeout,omitempty" json:"idleTimeout,omitempty"`
	// ConnectTimeout bounds establishing a connection to an endpoint. Default 5s.
	ConnectTimeout time.Duration `yaml:"connectTimeout,omitempty" json:"connectTimeout,omitempty"`
}

// Source records where a config came from and where each object sits in it.
type Source struct {
	// File is the path of the config file, or a label such as "<admin PUT>".
	File string
	// Lines maps an object path ("routes[2]", "routes[2].match[0].path") to its line in File.
	Lines map[string]int
}
