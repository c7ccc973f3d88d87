package engine

import (
	"encoding/json"
	"fmt"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/policy/auth"
	"github.com/meshgate/meshgate/internal/proxy/policy/cors"
	"github.com/meshgate/meshgate/internal/proxy/policy/ipaccess"
	"github.com/meshgate/meshgate/internal/security/authz"
	"github.com/meshgate/meshgate/internal/security/credential"
	"github.com/meshgate/meshgate/internal/security/jwtauth"
)

// verifierKey identifies a JWT verifier: one authenticator's settings. A verifier (its key
// cache and refresh loop) outlives reloads while they are unchanged.
type verifierKey struct {
	name        string
	fingerprint string
}

// security is what a table's authentication needs: the consumer directory, the compiled
// authenticators and the verifiers and clients they own.
type security struct {
	dir            *credential.Directory
	authenticators map[string]auth.Authenticator
	verifiers      map[verifierKey]*jwtauth.Verifier
	newVerifiers   []*jwtauth.Verifier // made for this table: started on success, closed on failure
	extAuthz       []*auth.ExtAuthz
	// internal are the request headers clients may not send on any listener: those meshgate
	// sets from credentials (consumer, claims, authorization answers).
	internal []string
}

// compileSecurity compiles cfg's consumers and authenticators, reusing running verifiers.
func (c *compiler) compileSecurity(cfg *config.Config) (*security, error) {
	dir, err := credential.NewDirectory(cfg.Consumers)
	if err != nil {
		return nil, err
	}
	s := &security{dir: dir, authenticators: map[string]auth.Authenticator{}, verifiers: map[verifierKey]*jwtauth.Verifier{},
		internal: []string{auth.ConsumerHeader}}
	c.sec = s
	for i := range cfg.Authenticators {
		a := &cfg.Authenticators[i]
		switch {
		case a.APIKey != nil:
			s.authenticators[a.Name] = auth.NewAPIKey(a.Name, a.APIKey, dir)
		case a.Basic != nil:
			s.authenticators[a.Name] = auth.NewBasic(a.Name, a.Basic, dir)
		case a.ClientCert != nil:
			s.authenticators[a.Name] = auth.NewClientCert(a.Name, a.ClientCert, dir)
		case a.ExtAuthz != nil:
			ea := auth.NewExtAuthz(a.Name, a.ExtAuthz, dir)
			s.extAuthz = append(s.extAuthz, ea)
			s.authenticators[a.Name] = ea
			s.internal = append(s.internal, a.ExtAuthz.UpstreamHeaders...)
		case a.JWT != nil:
			v, err := c.verifier(cfg, a.Name, a.JWT)
			if err != nil {
				return nil, fmt.Errorf("authenticator %q: %w", a.Name, err)
			}
			s.authenticators[a.Name] = auth.NewJWT(a.Name, a.JWT, v, dir)
			for _, h := range a.JWT.ClaimHeaders {
				s.internal = append(s.internal, h)
			}
		default:
			return nil, fmt.Errorf("authenticator %q has no kind", a.Name)
		}
	}
	return s, nil
}

// verifier returns the JWT verifier of authenticator name, the running one when its settings
// are unchanged.
func (c *compiler) verifier(cfg *config.Config, name string, j *config.JWTAuth) (*jwtauth.Verifier, error) {
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(j.KeyFiles))
	for i, f := range j.KeyFiles {
		files[i] = cfg.ResolvePath(f)
	}
	k := verifierKey{name: name, fingerprint: string(b) + fmt.Sprint(files)}
	if v := c.e.runningVerifier(k); v != nil {
		c.sec.verifiers[k] = v
		return v, nil
	}
	v, err := jwtauth.New(jwtauth.Options{
		JWKSURL: j.JWKSURL, KeyFiles: files, Algorithms: j.Algorithms, Issuer: j.Issuer, Audiences: j.Audiences,
		Leeway: j.Leeway, RefreshInterval: j.RefreshInterval, MaxKeyAge: j.MaxKeyAge, MaxTokenBytes: j.MaxTokenBytes,
		Logger: c.e.log.With("authenticator", name),
	})
	if err != nil {
		return nil, err
	}
	c.sec.verifiers[k] = v
	c.sec.newVerifiers = append(c.sec.newVerifiers, v)
	return v, nil
}

// routeSecurity returns the middlewares of r's security policies, in the order they run: IP
// access, CORS (preflights are answered before authentication, as browsers send them without
// credentials), authentication, authorization, then the consumer's plan.
func (c *compiler) routeSecurity(r *config.Route, l *config.Listener) ([]proxy.Middleware, error) {
	var mws []proxy.Middleware
	if r.IPAccess != nil {
		mw, err := ipaccess.New(r.Name, r.IPAccess)
		if err != nil {
			return nil, err
		}
		mws = append(mws, mw)
	}
	if r.CORS != nil {
		mw, err := cors.New(r.Name, r.CORS)
		if err != nil {
			return nil, err
		}
		mws = append(mws, mw)
	}
	if r.Auth != nil {
		auths := make([]auth.Authenticator, 0, len(r.Auth.Authenticators))
		for _, name := range r.Auth.Authenticators {
			a := c.sec.authenticators[name]
			if a == nil {
				return nil, fmt.Errorf("authenticator %q is not defined", name)
			}
			auths = append(auths, a)
		}
		mws = append(mws, auth.New(r.Name, auths, r.Auth.Optional, c.e.auth))
	}
	var p *authz.Policy
	switch {
	case r.Authz != nil:
		var err error
		if p, err = authz.Compile(r.Authz); err != nil {
			return nil, fmt.Errorf("authz: %w", err)
		}
	case l.Security.DefaultDeny:
		p = authz.DefaultDeny()
	}
	if p != nil {
		mws = append(mws, authzMiddleware(r.Name, p, c.e.metrics.AuthzDecisions))
	}
	if mw := c.planMiddleware(); mw != nil && r.Auth != nil {
		mws = append(mws, mw)
	}
	return mws, nil
}
