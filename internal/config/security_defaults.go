package config

import "time"

// Edge-security defaults.
const (
	defaultAPIKeyHeader       = "X-API-Key"
	defaultJWTLeeway          = 30 * time.Second
	defaultJWTRefreshInterval = 5 * time.Minute
	defaultJWTMaxKeyAge       = time.Hour
	defaultJWTConsumerClaim   = "sub"
	defaultJWTMaxTokenBytes   = 8192
	defaultBasicRealm         = "meshgate"
	defaultExtAuthzTimeout    = 200 * time.Millisecond
	defaultQuotaTimeout       = 50 * time.Millisecond
	defaultCORSMaxAge         = 10 * time.Minute
	defaultFrameOptions       = "DENY"
	defaultReferrerPolicy     = "no-referrer"
	defaultStreamIdleTimeout  = 5 * time.Minute
	defaultAdaptiveInitial    = 20
	defaultAdaptiveMin        = 3
	defaultAdaptiveMax        = 1000
	defaultAdaptiveWindow     = 100 * time.Millisecond
	defaultAdaptiveTolerance  = 1.5
	defaultClientAuthWithCA   = ClientAuthOptional
	defaultAuthzDefaultAction = AuthzDeny
	defaultAuditLog           = "off"
)

// TLS client-certificate modes of a listener.
const (
	ClientAuthOptional = "optional" // a certificate, when sent, must verify.
	ClientAuthRequire  = "require"  // every connection must present a certificate that verifies.
)

// securityDefaults fills the defaults of the authenticators, plans and admin security.
func securityDefaults(c *Config) {
	setDefault(&c.Admin.AuditLog, defaultAuditLog)
	if t := c.Admin.TLS; t != nil {
		setDefault(&t.MinVersion, "1.2")
		if t.ClientCA != "" {
			setDefault(&t.ClientAuth, defaultClientAuthWithCA)
		}
	}
	for i := range c.Authenticators {
		a := &c.Authenticators[i]
		if a.APIKey != nil {
			setDefault(&a.APIKey.Header, defaultAPIKeyHeader)
		}
		if j := a.JWT; j != nil {
			setDefault(&j.Leeway, defaultJWTLeeway)
			setDefault(&j.RefreshInterval, defaultJWTRefreshInterval)
			setDefault(&j.MaxKeyAge, defaultJWTMaxKeyAge)
			setDefault(&j.ConsumerClaim, defaultJWTConsumerClaim)
			setDefault(&j.MaxTokenBytes, defaultJWTMaxTokenBytes)
		}
		if a.Basic != nil {
			setDefault(&a.Basic.Realm, defaultBasicRealm)
		}
		if e := a.ExtAuthz; e != nil {
			setDefault(&e.Timeout, defaultExtAuthzTimeout)
		}
	}
	for i := range c.Plans {
		p := &c.Plans[i]
		if l := p.RateLimit; l != nil {
			setDefault(&l.Burst, defaultBurst(l.Rate))
			setDefault(&l.MaxKeys, defaultRateLimitMaxKeys)
		}
		if q := p.Quota; q != nil {
			setDefault(&q.Timeout, defaultQuotaTimeout)
		}
	}
}

// acmeDefaults fills the defaults of an ACME block: Let's Encrypt and storage "acme".
func acmeDefaults(a *ACME) {
	setDefault(&a.Challenge, ACMETLSALPN01)
	setDefault(&a.DirectoryURL, "https://acme-v02.api.letsencrypt.org/directory")
	setDefault(&a.Storage, "acme")
}

// routeSecurityDefaults fills the defaults of a route's security policies and stream idle timeout.
func routeSecurityDefaults(r *Route) {
	if r.Authz != nil {
		setDefault(&r.Authz.Default, defaultAuthzDefaultAction)
	}
	if c := r.CORS; c != nil {
		if len(c.AllowMethods) == 0 {
			c.AllowMethods = []string{"GET", "HEAD", "POST"}
		}
		setDefault(&c.MaxAge, defaultCORSMaxAge)
	}
	if r.StreamIdleTimeout == nil {
		d := defaultStreamIdleTimeout
		r.StreamIdleTimeout = &d
	}
}

// securityHeadersDefaults fills the defaults of a security-headers filter: nosniff, frame
// options DENY and referrer policy no-referrer.
func securityHeadersDefaults(h *SecurityHeaders) {
	if h.ContentTypeNosniff == nil {
		t := true
		h.ContentTypeNosniff = &t
	}
	setDefault(&h.FrameOptions, defaultFrameOptions)
	setDefault(&h.ReferrerPolicy, defaultReferrerPolicy)
}

// adaptiveDefaults fills the defaults of an adaptive concurrency limit.
func adaptiveDefaults(a *AdaptiveConcurrency) {
	setDefault(&a.InitialLimit, defaultAdaptiveInitial)
	setDefault(&a.MinLimit, defaultAdaptiveMin)
	setDefault(&a.MaxLimit, defaultAdaptiveMax)
	setDefault(&a.SampleWindow, defaultAdaptiveWindow)
	setDefault(&a.Tolerance, defaultAdaptiveTolerance)
}
