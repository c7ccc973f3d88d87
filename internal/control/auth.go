package control

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/identity"
)

// Reasons an RPC's caller was not authenticated, as counted in
// meshgate_control_auth_failures_total{reason}.
const (
	authNoCertificate    = "no_certificate"
	authExpired          = "certificate_expired"
	authRevoked          = "certificate_revoked"
	authUntrusted        = "certificate_untrusted"
	authTrustDomain      = "wrong_trust_domain"
	authTokenInvalid     = "token_invalid"
	authTokenExpired     = "token_expired"
	authNotGranted       = "identity_not_granted"
	authIdentityMismatch = "identity_mismatch"
)

// caller is an authenticated peer: the SPIFFE ID of its verified client certificate.
type caller struct {
	id        spiffeid.ID
	namespace string
	service   string
}

// authError is a refusal with the reason it is counted under.
type authError struct {
	reason string
	code   codes.Code
	msg    string
}

func (e *authError) Error() string { return e.msg }

// refuse counts and logs a refused call and returns the gRPC status error for it.
func (s *Server) refuse(ctx context.Context, rpc string, err error) error {
	var ae *authError
	if !errors.As(err, &ae) {
		return status.Error(codes.Internal, err.Error())
	}
	s.metrics.authFailures.WithLabelValues(rpc, ae.reason).Inc()
	s.log.Warn("control: call refused", "rpc", rpc, "reason", ae.reason, "peer", peerAddr(ctx), "error", ae.msg)
	return status.Error(ae.code, ae.msg)
}

// peerCaller verifies the client certificate of the call against the current trust bundle and
// returns the caller's workload identity.
func (s *Server) peerCaller(ctx context.Context) (caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return caller{}, &authError{authNoCertificate, codes.Unauthenticated, "no peer information"}
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.PeerCertificates) == 0 {
		return caller{}, &authError{authNoCertificate, codes.Unauthenticated,
			"no client certificate: obtain a workload certificate with Identity.Sign and a join token first"}
	}
	certs := ti.State.PeerCertificates
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	now := s.now()
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         s.bundlePool(),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		CurrentTime:   now,
	})
	id, idErr := x509svid.IDFromCert(leaf)
	name := "the client certificate"
	if idErr == nil {
		name = "the client certificate of " + id.String()
	}
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			msg := fmt.Sprintf("%s expired at %s (now %s): renew it with a join token", name,
				leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
			if now.Before(leaf.NotBefore) {
				msg = fmt.Sprintf("%s is not valid before %s: check the clocks", name, leaf.NotBefore.UTC().Format(time.RFC3339))
			}
			return caller{}, &authError{authExpired, codes.Unauthenticated, msg}
		}
		return caller{}, &authError{authUntrusted, codes.Unauthenticated,
			fmt.Sprintf("%s does not chain to the mesh's trust bundle: %v", name, err)}
	}
	if idErr != nil {
		return caller{}, &authError{authUntrusted, codes.Unauthenticated, "the client certificate has no SPIFFE ID: " + idErr.Error()}
	}
	if id.TrustDomain() != s.trustDomain {
		return caller{}, &authError{authTrustDomain, codes.PermissionDenied,
			fmt.Sprintf("identity %s is not in trust domain %s", id, s.trustDomain)}
	}
	ns, svc, err := identity.ParseWorkloadID(id)
	if err != nil {
		return caller{}, &authError{authUntrusted, codes.PermissionDenied, err.Error()}
	}
	if rs := s.revocations.Load(); rs != nil {
		if r, ok := state.Revoked(*rs, id.String(), leaf.NotBefore); ok {
			return caller{}, &authError{authRevoked, codes.PermissionDenied,
				fmt.Sprintf("%s was revoked at %s (%s): obtain a new certificate with a join token", name,
					r.Before.Format(time.RFC3339), r.Reason)}
		}
	}
	return caller{id: id, namespace: ns, service: svc}, nil
}

// bearerToken returns the token of an "authorization: Bearer TOKEN" metadata entry, or "".
func bearerToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
	}
	return ""
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
