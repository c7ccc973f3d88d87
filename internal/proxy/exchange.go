package proxy

import (
	"context"
	"crypto/x509"
	"io"
	"net/netip"
	"time"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Exchange is one request/response pair travelling through the engine. Transports create it (and
// may reuse it across requests on one connection after Reset); handlers read and change it.
type Exchange struct {
	// Ctx is cancelled when the client goes away, and carries the route's deadline.
	Ctx context.Context
	// Req is the request head. Filters change it before it is forwarded.
	Req httpmsg.Request
	// Body is the request body, or nil when the request has none. Reading it enforces the body limit.
	Body io.Reader
	// W sends the response.
	W ResponseWriter

	// Listener is the name of the listener the request arrived on.
	Listener string
	// Scheme is "http" or "https", as the client used it.
	Scheme string
	// Peer is the address of the directly connected client.
	Peer netip.AddrPort
	// PeerText is Peer's address as text; transports fill it once per connection so the engine
	// need not format it for every request.
	PeerText string
	// PeerCertificates is the certificate chain the client presented and the listener verified
	// (leaf first), or nil.
	PeerCertificates []*x509.Certificate
	// PeerID is the workload identity (SPIFFE ID) of the mesh peer that sent the request, proved
	// by mutual TLS on a sidecar's inbound connection; "" otherwise.
	PeerID string
	// ClientIP is the original client's address: Peer, or the address a trusted proxy reported.
	ClientIP netip.Addr
	// ID is the request id (X-Request-Id), kept from the client or generated.
	ID string
	// Start is when the request head was read completely.
	Start time.Time
	// Deadline is when the exchange must be over (the route or listener request timeout); zero
	// means no limit. Transports apply it to their connections.
	Deadline time.Time
	// StreamIdle, when above zero, ends the exchange when no body byte moves upstream or
	// downstream for this long (504 stream_idle_timeout before the response head, a reset after).
	StreamIdle time.Duration

	// Route is the name of the route that matched, or "".
	Route string
	// Service is the name of the service the request was sent to, or "".
	Service string
	// Endpoint is the address of the endpoint that served the request, or "".
	Endpoint string
	// Status is the status sent downstream, 0 until known.
	Status int
	// Reason is the reason code when meshgate produced or ended the response itself, else "".
	Reason string
	// BytesIn counts request body bytes read from the client.
	BytesIn int64
	// BytesOut counts response body bytes written to the client.
	BytesOut int64
	// UpstreamStart is when the request was handed to the upstream transport; zero when it was not.
	UpstreamStart time.Time
	// UpstreamDuration is how long the upstream took from sending the request to the end of the response.
	UpstreamDuration time.Duration
	// Err is the error that ended the exchange, for the log; nil on success.
	Err error

	// MatchedPrefix is the path prefix of the winning route match when it was a prefix match.
	MatchedPrefix string
	// ResponseEdits are applied to the upstream response head before it is sent downstream.
	ResponseEdits []func(*httpmsg.Response)
	// Hold, when set, may keep an upstream response from reaching the client (see ResponseHold).
	Hold ResponseHold
	// Identity is who authentication found the caller to be; nil for anonymous requests.
	Identity *Identity
	// Decision names the authorization rule that admitted or refused the request ("" when no
	// policy ran, "default" when the policy's default decided).
	Decision string
	// Attempts counts the times the request was sent upstream by policy (retries included; the
	// transport's own resend on a connection found closed is not counted).
	Attempts int
	// Trace records the exchange's upstream attempts when tracing is on; nil otherwise.
	Trace AttemptTracer
	// LocalReplyEdit, when set, is applied to the responses meshgate generates itself for the
	// exchange (errors, refusals, redirects): the route's security headers.
	LocalReplyEdit func(*httpmsg.Response)
	// AtEdge is set when the request arrived on a gateway listener (from outside the mesh).
	AtEdge bool
	// EdgeConsumer, EdgePlan and EdgeRoute are what the edge decided about the request, from a
	// verified edge context header at a sidecar hop; "" otherwise.
	EdgeConsumer, EdgePlan, EdgeRoute string
}

// Reset clears x for reuse on the next request of the same connection, keeping allocated capacity.
func (x *Exchange) Reset() {
	hdr := x.Req.Header[:0]
	edits := x.ResponseEdits[:0]
	*x = Exchange{}
	x.Req.Header = hdr
	x.ResponseEdits = edits
}

// Identity is who a request was authenticated as.
type Identity struct {
	// Authenticator is the name of the authenticator that accepted the credential.
	Authenticator string
	// Consumer is the consumer's name, or "" when the credential maps to no consumer.
	Consumer string
	// Groups are the consumer's groups.
	Groups []string
	// Plan is the consumer's plan, or "".
	Plan string
	// Claims are the verified JWT's claims, or nil.
	Claims map[string]any
}

// CallContext returns the context for a call a policy makes on the exchange's behalf (an
// authorization service, Redis): cancelled when the client goes away (where the transport
// tells), after timeout, and at the exchange's deadline, whichever comes first.
func (x *Exchange) CallContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	parent := x.Ctx
	if parent == nil {
		parent = context.Background()
	}
	d := time.Now().Add(timeout)
	if !x.Deadline.IsZero() && x.Deadline.Before(d) {
		d = x.Deadline
	}
	return context.WithDeadline(parent, d)
}
