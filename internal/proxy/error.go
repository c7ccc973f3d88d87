package proxy

import (
	"errors"
	"fmt"
)

// Reason codes name why meshgate itself produced a response. They are stable: operators alert on
// them. Each appears in the X-Meshgate-Reason response header, the access log and the metrics.
const (
	ReasonNoRoute             = "no_route"               // no route matched the request.
	ReasonBadRequest          = "bad_request"            // the request was malformed.
	ReasonBadPath             = "bad_path"               // the path could not be normalised safely.
	ReasonHeaderTooLarge      = "header_too_large"       // the request head exceeded the size or count limit.
	ReasonBodyTooLarge        = "body_too_large"         // the request body exceeded the limit.
	ReasonRequestTimeout      = "request_timeout"        // the client was too slow sending the request.
	ReasonUpstreamUnavailable = "upstream_unavailable"   // no connection to any endpoint could be made.
	ReasonNoHealthyUpstream   = "no_healthy_upstream"    // every endpoint of the service is unhealthy.
	ReasonUpstreamTimeout     = "upstream_timeout"       // the route timeout expired waiting for the upstream.
	ReasonUpstreamReset       = "upstream_reset"         // the upstream closed or reset the connection.
	ReasonUpstreamProtocol    = "upstream_protocol"      // the upstream sent a malformed response.
	ReasonDownstreamReset     = "downstream_reset"       // the client went away mid-exchange.
	ReasonRedirect            = "redirect"               // a redirect filter answered.
	ReasonDirectResponse      = "direct_response"        // a respond filter answered.
	ReasonUpgradeFailed       = "upgrade_failed"         // a protocol upgrade could not be tunnelled.
	ReasonOverloaded          = "overloaded"             // the proxy shed load.
	ReasonInternal            = "internal_error"         // a bug: meshgate failed in a way it did not expect.
	ReasonNoBackend           = "no_backend"             // every backend of the route has weight 0.
	ReasonRateLimited         = "rate_limited"           // a rate limit refused the request (429).
	ReasonRateLimitDown       = "rate_limit_unavailable" // a fail-closed global rate limit could not reach its store.
	ReasonCircuitOpen         = "circuit_open"           // the service's circuit breaker refused the request.
	ReasonFaultInjected       = "fault_injected"         // a fault policy answered instead of the upstream.
	ReasonConcurrencyLimited  = "concurrency_limited"    // the service's adaptive concurrency limit refused the request.
	ReasonStreamIdleTimeout   = "stream_idle_timeout"    // neither body moved for the route's stream idle timeout.
	ReasonUnauthenticated     = "unauthenticated"        // the request carried no credential a route's authenticators accept.
	ReasonBadCredential       = "bad_credential"         // a credential was present but invalid, expired or unknown.
	ReasonAuthzDenied         = "authz_denied"           // an authorization rule (or the default) refused the request.
	ReasonExtAuthzDenied      = "ext_authz_denied"       // the external authorization service refused the request.
	ReasonExtAuthzDown        = "ext_authz_unavailable"  // the external authorization service could not answer in time.
	ReasonIPDenied            = "ip_denied"              // the client address is not allowed on the route.
	ReasonQuotaExceeded       = "quota_exceeded"         // the consumer used up its quota for the period.
	ReasonQuotaDown           = "quota_unavailable"      // a fail-closed quota could not reach its store.
	ReasonCORSRejected        = "cors_rejected"          // a CORS preflight asked for what the policy does not allow.
	ReasonMeshTLS             = "mesh_tls_failed"        // the mutual TLS handshake with a mesh peer failed (untrusted, expired or wrong identity).
	ReasonMTLSRequired        = "mtls_required"          // a plaintext connection reached a mesh service that accepts only mutual TLS.
	ReasonUnknownDestination  = "unknown_destination"    // an intercepted connection's destination is no known mesh service.
	ReasonProtocolMismatch    = "protocol_mismatch"      // the connection's protocol is not the one declared for the port.
	ReasonACMEChallenge       = "acme_challenge"         // meshgate answered an ACME HTTP-01 challenge itself.
)

// A request the HTTP/1 codec refuses carries the codec's own, more specific reason code (see package
// http1): bad_request_line, unsupported_version (505), bad_header, header_too_large and
// too_many_headers (431), ambiguous_framing, bad_content_length, bad_transfer_encoding,
// unsupported_transfer_coding (501), body_not_allowed, bad_host, bad_chunk and bad_trailer (400).
// They are as stable as the codes above.

// ReasonHeader is the response header that carries the reason code of a proxy-generated response.
const ReasonHeader = "X-Meshgate-Reason"

// Error is an error that knows the response it deserves: a status code and a reason code.
type Error struct {
	// Status is the HTTP status code to answer with.
	Status int
	// Reason is a stable reason code, one of the Reason constants.
	Reason string
	// Err is the underlying cause, for logs; it is never sent to the client.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s", e.Status, e.Reason)
	}
	return fmt.Sprintf("%d %s: %v", e.Status, e.Reason, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Fail returns an *Error with the given status, reason and cause.
func Fail(status int, reason string, cause error) *Error {
	return &Error{Status: status, Reason: reason, Err: cause}
}

// AsError returns err as an *Error, classifying an unknown error as a 500 internal_error.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: 500, Reason: ReasonInternal, Err: err}
}
