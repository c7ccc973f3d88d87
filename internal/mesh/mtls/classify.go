package mtls

import (
	"crypto/x509"
	"errors"
	"strings"
)

// x509Cert shortens the authorizer's signature.
type x509Cert = x509.Certificate

// Why a mesh handshake failed (the reason label of the handshake metrics).
const (
	FailureExpired       = "expired"        // the peer's certificate has expired or is not yet valid.
	FailureUntrusted     = "untrusted"      // the peer's certificate does not chain to the trust bundle.
	FailureForeignDomain = "foreign_domain" // the peer's identity is in another trust domain.
	FailureWrongIdentity = "wrong_identity" // the peer is not the workload the call is for.
	FailureNoCertificate = "no_certificate" // the peer presented no certificate (plain TLS client).
	FailureProtocol      = "protocol"       // no common protocol, or not TLS at all.
	FailureTimeout       = "timeout"        // the handshake did not finish in time.
	FailureRevoked       = "revoked"        // the peer's certificate was revoked by the control plane.
	FailureHandshake     = "handshake"      // any other handshake failure (the peer hung up, bad alert).
)

// Classify names why a mesh handshake failed, one of the Failure constants.
func Classify(err error) string {
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	var ne interface{ Timeout() bool }
	msg := err.Error()
	switch {
	case errors.Is(err, errRevoked), strings.Contains(msg, "was revoked"):
		return FailureRevoked
	case errors.Is(err, errForeignDomain), strings.Contains(msg, "no X.509 bundle found"),
		strings.Contains(msg, "unexpected trust domain"), strings.Contains(msg, "no trust bundle for trust domain"):
		return FailureForeignDomain
	case errors.Is(err, errProtocol), strings.Contains(msg, "no application protocol"),
		strings.Contains(msg, "first record does not look like a TLS handshake"):
		return FailureProtocol
	case errors.As(err, &inv) && inv.Reason == x509.Expired, strings.Contains(msg, "expired"):
		return FailureExpired
	case errors.As(err, &ua), strings.Contains(msg, "unknown authority"), strings.Contains(msg, "could not verify"):
		return FailureUntrusted
	case strings.Contains(msg, "unexpected ID"):
		return FailureWrongIdentity
	case strings.Contains(msg, "no certificate"), strings.Contains(msg, "certificate required"),
		strings.Contains(msg, "no peer certificates"), strings.Contains(msg, "didn't provide a certificate"):
		return FailureNoCertificate
	case errors.As(err, &ne) && ne.Timeout(), strings.Contains(msg, "deadline exceeded"):
		return FailureTimeout
	}
	return FailureHandshake
}
