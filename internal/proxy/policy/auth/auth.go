// Package auth is the authentication policy of a route: it tries the route's authenticators in
// order, and the first whose kind of credential the request carries decides. A valid credential
// sets the exchange's Identity (and the upstream header X-Meshgate-Consumer); an invalid one is
// refused with 401 and reason "bad_credential" (or the authenticator's own answer); a request that
// carries none gets 401 "unauthenticated", unless the route allows anonymous requests.
//
// Credentials are never logged and never forwarded: API keys and basic credentials are removed
// from the request sent upstream.
package auth

import (
	"errors"
	"fmt"
	"strings"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ConsumerHeader is the upstream request header that names the authenticated consumer. Clients
// cannot send it: the engine removes it from every request.
const ConsumerHeader = "X-Meshgate-Consumer"

// Authenticator checks one kind of credential.
type Authenticator interface {
	// Name is the authenticator's name in the config, logs and metrics.
	Name() string
	// Authenticate reports whether x carries this kind of credential (present) and, when it
	// does, who it identifies, or the error (a *proxy.Error, or a response already written
	// through proxy.Respond) that refuses it.
	Authenticate(x *proxy.Exchange) (id *proxy.Identity, present bool, err error)
	// Challenge is the WWW-Authenticate value a 401 offers for this kind, or "".
	Challenge() string
}

// credentialRemover is implemented by authenticators whose credentials must not travel upstream:
// once another authenticator of the route has decided, RemoveCredential takes this kind's
// credential, if any, out of the request.
type credentialRemover interface {
	RemoveCredential(x *proxy.Exchange)
}

// Results of an authentication, the "result" label of meshgate_auth_total.
const (
	ResultAuthenticated = "authenticated"
	ResultRefused       = "refused"
	ResultMissing       = "missing"
	ResultAnonymous     = "anonymous"
)

// errNoCredential is the cause of a 401 for a request without any accepted credential.
var errNoCredential = errors.New("auth: the request carries no credential the route accepts")

// New returns the middleware of a route's authentication: auths are tried in order; optional
// admits requests that carry no credential at all.
func New(route string, auths []Authenticator, optional bool, m *Metrics) proxy.Middleware {
	var challenges []string
	for _, a := range auths {
		if c := a.Challenge(); c != "" {
			challenges = append(challenges, c)
		}
	}
	p := &policy{route: route, auths: auths, optional: optional, m: m, challenge: strings.Join(challenges, ", ")}
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			if answered, err := p.authenticate(x); answered || err != nil {
				return err
			}
			return next.Serve(x)
		})
	}
}

// policy is a compiled route authentication.
type policy struct {
	route     string
	auths     []Authenticator
	optional  bool
	m         *Metrics
	challenge string
}

// errAnswered is returned by an authenticator that refused a request by answering it itself.
var errAnswered = errors.New("auth: the request was answered by the authenticator")

// authenticate sets x.Identity, or refuses x: answered reports that x was answered here; err is
// the refusal left for the engine to answer, or the failure to write the answer.
func (p *policy) authenticate(x *proxy.Exchange) (answered bool, err error) {
	for i, a := range p.auths {
		id, present, err := a.Authenticate(x)
		if !present {
			continue
		}
		// The authenticators after the deciding one never look at the request: their
		// credentials are removed, so that none travels upstream.
		for _, later := range p.auths[i+1:] {
			if r, ok := later.(credentialRemover); ok {
				r.RemoveCredential(x)
			}
		}
		if err != nil {
			p.m.count(p.route, a.Name(), ResultRefused)
			if errors.Is(err, errAnswered) {
				return true, nil
			}
			return p.refuse(x, err)
		}
		p.m.count(p.route, a.Name(), ResultAuthenticated)
		if id == nil {
			id = &proxy.Identity{Authenticator: a.Name()} // fail-open external authorization
		}
		x.Identity = id
		if id.Consumer != "" {
			x.Req.Header.Set(ConsumerHeader, id.Consumer)
		}
		return false, nil
	}
	if p.optional {
		p.m.count(p.route, "", ResultAnonymous)
		return false, nil
	}
	p.m.count(p.route, "", ResultMissing)
	return p.refuse(x, proxy.Fail(401, proxy.ReasonUnauthenticated, errNoCredential))
}

// refuse answers a 401 with the challenges of the route's authenticators; other refusals go
// back to the engine.
func (p *policy) refuse(x *proxy.Exchange, err error) (answered bool, _ error) {
	e := proxy.AsError(err)
	if e.Status != 401 || p.challenge == "" {
		return false, err
	}
	x.Err = err
	return true, proxy.Respond(x, 401, e.Reason, "text/plain; charset=utf-8", "401 "+e.Reason+"\n",
		httpmsg.Field{Name: "WWW-Authenticate", Value: p.challenge},
		httpmsg.Field{Name: "Cache-Control", Value: "no-store"})
}

// badCredential is the error of a present but invalid credential; why must not contain it.
func badCredential(name, why string) error {
	return proxy.Fail(401, proxy.ReasonBadCredential, fmt.Errorf("auth: %s: %s", name, why))
}
