package control

import (
	"context"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/token"
	"github.com/meshgate/meshgate/internal/identity"
)

// identityService answers Identity.Sign.
type identityService struct {
	controlv1.UnimplementedIdentityServer
	s *Server
}

// Sign certifies the CSR's identity for a caller holding a join token that grants it, or a valid
// certificate for the same identity (renewal).
func (is identityService) Sign(ctx context.Context, req *controlv1.SignRequest) (*controlv1.SignResponse, error) {
	s := is.s
	tok := bearerToken(ctx)
	var renewing *caller
	if tok == "" {
		c, err := s.peerCaller(ctx)
		if err != nil {
			return nil, s.refuse(ctx, "Sign", err)
		}
		renewing = &c
	}
	authorize := func(id spiffeid.ID) error {
		ns, svc, err := identity.ParseWorkloadID(id)
		if err != nil {
			return err
		}
		if renewing != nil {
			if renewing.id != id {
				return &authError{authIdentityMismatch, codes.PermissionDenied,
					fmt.Sprintf("a certificate for %s cannot renew %s", renewing.id, id)}
			}
			return nil
		}
		_, err = s.tokens.Authorize(ctx, tok, ns, svc)
		switch {
		case errors.Is(err, token.ErrExpired):
			return &authError{authTokenExpired, codes.Unauthenticated, err.Error()}
		case errors.Is(err, token.ErrInvalid):
			return &authError{authTokenInvalid, codes.Unauthenticated, "invalid join token"}
		case errors.Is(err, token.ErrNotGranted):
			return &authError{authNotGranted, codes.PermissionDenied, err.Error()}
		case err != nil:
			return status.Error(codes.Unavailable, err.Error())
		}
		return nil
	}
	ttl := s.opts.CertTTL
	if d := req.GetTtl(); d != nil && d.AsDuration() > 0 {
		ttl = d.AsDuration()
	}
	ca := s.ca()
	chain, err := ca.Sign(req.GetCsr(), ttl, authorize)
	if err != nil {
		var ae *authError
		if errors.As(err, &ae) {
			return nil, s.refuse(ctx, "Sign", ae)
		}
		if st, ok := status.FromError(errors.Unwrap(err)); ok && st.Code() == codes.Unavailable {
			return nil, st.Err()
		}
		s.metrics.signs.WithLabelValues("refused").Inc()
		s.log.Warn("control: CSR refused", "peer", peerAddr(ctx), "error", err)
		if errors.Is(err, identity.ErrNotAuthorized) {
			return nil, status.Error(codes.PermissionDenied, err.Error())
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.metrics.signs.WithLabelValues("signed").Inc()
	resp := &controlv1.SignResponse{CertificateChain: chain}
	for _, r := range ca.Bundle() {
		resp.TrustBundle = append(resp.TrustBundle, r.Raw)
	}
	return resp, nil
}
