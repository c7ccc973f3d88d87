package credential

import (
	"crypto/x509"
	"strings"
)

// ByCertificate returns the consumer a verified client certificate maps to, by its subject
// distinguished name (as cert.Subject.String() prints it), its DNS subject alternative names
// (compared case-insensitively) and its URI subject alternative names. A certificate whose values
// map to more than one consumer is ambiguous and maps to none.
func (d *Directory) ByCertificate(cert *x509.Certificate) (*Consumer, bool) {
	if cert == nil {
		return nil, false
	}
	var found *Consumer
	ambiguous := false
	match := func(c *Consumer, ok bool) {
		switch {
		case !ok:
		case found == nil:
			found = c
		case found != c:
			ambiguous = true
		}
	}
	if len(d.subjects) > 0 {
		c, ok := d.subjects[cert.Subject.String()]
		match(c, ok)
	}
	for _, name := range cert.DNSNames {
		c, ok := d.dnsNames[strings.ToLower(name)]
		match(c, ok)
	}
	for _, u := range cert.URIs {
		if u != nil {
			c, ok := d.uris[u.String()]
			match(c, ok)
		}
	}
	if found == nil || ambiguous {
		return nil, false
	}
	return found, true
}
