package config

import (
	"strings"
)

// listenerList checks every listener, their names, and that all of them (and the admin
// listener) can bind their addresses side by side.
func (v *validator) listenerList() {
	v.listeners = make(map[string]bool)
	names := make(map[string]string)
	var bound []binding
	if v.c.Admin.Address != "off" {
		bound = appendBinding(bound, v.object("admin", "").key("address"), v.c.Admin.Address)
	}
	for i := range v.c.Listeners {
		l := &v.c.Listeners[i]
		s := v.object(pathIndex("listeners", i), l.Name)
		uniqueName(s, l.Name, names)
		if l.Name != "" {
			v.listeners[l.Name] = true
		}
		v.listener(s, l)
		bound = appendBinding(bound, s.key("address"), l.Address)
	}
	checkClashes(bound)
}

// listener checks one listener.
func (v *validator) listener(s scope, l *Listener) {
	if l.Address == "" {
		s.key("address").errorf("required")
	} else {
		checkListenAddress(s.key("address"), l.Address)
	}
	checkOneOf(s.key("protocol"), l.Protocol, ProtocolHTTP, ProtocolHTTPS, ProtocolH2C)
	switch {
	case l.Protocol == ProtocolHTTPS && l.TLS == nil:
		s.key("tls").errorf(`required when protocol is "https"`)
	case l.Protocol != ProtocolHTTPS && l.TLS != nil:
		s.key("tls").errorf(`only allowed when protocol is "https"`)
	case l.TLS != nil:
		v.listenerTLS(s.key("tls"), l.TLS)
	}

	t := s.key("timeouts")
	checkNotNegative(t.key("readHeader"), l.Timeouts.ReadHeader)
	checkNotNegative(t.key("idle"), l.Timeouts.Idle)
	checkNotNegative(t.key("request"), l.Timeouts.Request)

	m := s.key("limits")
	checkNotNegative(m.key("maxHeaderBytes"), l.Limits.MaxHeaderBytes)
	checkNotNegative(m.key("maxHeaderCount"), l.Limits.MaxHeaderCount)
	if l.Limits.MaxBodyBytes < -1 {
		m.key("maxBodyBytes").errorf("must be -1 (no limit) or a size in bytes")
	}
	checkNotNegative(m.key("maxConnections"), l.Limits.MaxConnections)
	checkNotNegative(m.key("maxActiveRequests"), l.Limits.MaxActiveRequests)

	checkPrefixes(s.key("trustedProxies"), l.TrustedProxies)
	v.listenerSecurity(s, l)
}

// listenerTLS checks the TLS settings of a listener and loads its certificates.
func (v *validator) listenerTLS(s scope, t *ListenerTLS) {
	checkOneOf(s.key("minVersion"), t.MinVersion, "1.2", "1.3")
	v.tlsPolicy(s, t)
	if len(t.Certificates) == 0 && t.ACME == nil {
		s.key("certificates").errorf("at least one certificate is required (or acme)")
	}
	if t.ACME != nil {
		v.acme(s.key("acme"), t.ACME)
	}
	for i, c := range t.Certificates {
		cs := s.key("certificates").index(i)
		if c.Cert == "" {
			cs.key("cert").errorf("required")
		}
		if c.Key == "" {
			cs.key("key").errorf("required")
		}
		if c.Cert == "" || c.Key == "" {
			continue
		}
		if _, err := v.c.loadKeyPair(c); err != nil {
			cs.errorf("cannot load the certificate and key: %s", strings.TrimPrefix(err.Error(), "tls: "))
		}
	}
}
