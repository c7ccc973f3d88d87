package gateway

import (
	"crypto/tls"
	"fmt"

	"github.com/meshgate/meshgate/internal/config"
)

// serverTLS builds the TLS config of an https listener: its certificates chosen by SNI (the first
// certificate whose names match; the first one when none does), TLS 1.2 or later with Go's modern
// cipher suites, and ALPN h2 then http/1.1.
func serverTLS(cfg *config.Config, l *config.Listener) (*tls.Config, error) {
	if l.TLS == nil {
		return nil, nil
	}
	certs := make([]tls.Certificate, 0, len(l.TLS.Certificates))
	for _, c := range l.TLS.Certificates {
		pair, err := tls.LoadX509KeyPair(cfg.ResolvePath(c.Cert), cfg.ResolvePath(c.Key))
		if err != nil {
			return nil, fmt.Errorf("listener %q: certificate %s: %w", l.Name, c.Cert, err)
		}
		certs = append(certs, pair)
	}
	minVersion := uint16(tls.VersionTLS12)
	if l.TLS.MinVersion == "1.3" {
		minVersion = tls.VersionTLS13
	}
	return &tls.Config{
		Certificates: certs,
		MinVersion:   minVersion,
		NextProtos:   []string{"h2", "http/1.1"},
		CurvePreferences: []tls.CurveID{
			tls.X25519MLKEM768, tls.X25519, tls.CurveP256,
		},
	}, nil
}
