package gateway

import (
	"net"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/engine"
)

// acmeChallengePrefix is where HTTP-01 challenges are asked.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// acmeHTTP answers the ACME HTTP-01 challenges that are in progress on a plain-HTTP listener,
// before routing; every other request goes to the engine. It answers only the exact token path
// of a challenge active for the request's host, so it takes nothing from the routes otherwise.
type acmeHTTP struct {
	e *engine.Engine
}

// ServeExchange implements listener.Handler.
func (a acmeHTTP) ServeExchange(x *proxy.Exchange) {
	if x.Req.Method == "GET" && strings.HasPrefix(x.Req.Path, acmeChallengePrefix) {
		host := x.Req.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ch, ok := certmagic.GetACMEChallenge(host); ok && x.Req.Path == ch.HTTP01ResourcePath() {
			a.e.Answer(x, 200, proxy.ReasonACMEChallenge, "text/plain", ch.KeyAuthorization)
			return
		}
	}
	a.e.ServeExchange(x)
}

// RejectExchange passes unparsable requests on to the engine.
func (a acmeHTTP) RejectExchange(x *proxy.Exchange, err *proxy.Error) { a.e.RejectExchange(x, err) }
