package auth

import (
	"net/url"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/security/credential"
)

// APIKey authenticates by an API key in a header or, when allowed, a query parameter. The key is
// removed from the request sent upstream.
type APIKey struct {
	name   string
	header string
	query  string
	dir    *credential.Directory
}

var _ Authenticator = (*APIKey)(nil)

// NewAPIKey returns the API-key authenticator name configured by c, checking keys against dir.
func NewAPIKey(name string, c *config.APIKeyAuth, dir *credential.Directory) *APIKey {
	return &APIKey{name: name, header: c.Header, query: c.Query, dir: dir}
}

// Name implements Authenticator.
func (a *APIKey) Name() string { return a.name }

// Challenge implements Authenticator: API keys have no standard challenge.
func (a *APIKey) Challenge() string { return "" }

// Authenticate implements Authenticator. A key in the header and another in the query, or the
// parameter given twice, is ambiguous and refused, like two key headers.
func (a *APIKey) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	key, inHeader := x.Req.Header.Get(a.header)
	if inHeader {
		if x.Req.Header.Count(a.header) > 1 {
			return nil, true, badCredential(a.name, "more than one API key header")
		}
		x.Req.Header.Del(a.header)
	}
	if a.query != "" {
		rest, qkey, n, ok := a.takeQuery(x.Req.Query)
		x.Req.Query = rest
		switch {
		case n > 0 && inHeader:
			return nil, true, badCredential(a.name, "API key in both the header and the query")
		case n > 1:
			return nil, true, badCredential(a.name, "more than one API key parameter")
		case n == 1 && !ok:
			return nil, true, badCredential(a.name, "malformed API key parameter")
		case n == 1:
			key, inHeader = qkey, true
		}
	}
	if !inHeader {
		return nil, false, nil
	}
	c, _, ok := a.dir.ByAPIKey(key)
	if !ok {
		return nil, true, badCredential(a.name, "unknown API key")
	}
	return identity(a.name, c), true, nil
}

// RemoveCredential implements credentialRemover: the key goes even when another authenticator
// of the route decided.
func (a *APIKey) RemoveCredential(x *proxy.Exchange) {
	x.Req.Header.Del(a.header)
	if a.query != "" {
		x.Req.Query, _, _, _ = a.takeQuery(x.Req.Query)
	}
}

// takeQuery removes every parameter named a.query from the raw query q. Names are compared after
// percent-decoding, as the upstream would decode them; the other parameters are left exactly as
// they were, in their order. It returns the rest of the query, the value of the last parameter
// removed, how many were removed and whether that value decoded.
func (a *APIKey) takeQuery(q string) (rest, key string, n int, ok bool) {
	if q == "" || (!strings.Contains(q, a.query) && !strings.ContainsAny(q, "%+")) {
		return q, "", 0, false
	}
	parts := strings.Split(q, "&")
	kept := parts[:0]
	for _, part := range parts {
		name, value, _ := strings.Cut(part, "=")
		if dn, err := url.QueryUnescape(name); err != nil || dn != a.query {
			kept = append(kept, part)
			continue
		}
		n++
		v, err := url.QueryUnescape(value)
		key, ok = v, err == nil
	}
	if n == 0 {
		return q, "", 0, false
	}
	return strings.Join(kept, "&"), key, n, ok
}

// identity is the identity of consumer c found by authenticator name.
func identity(name string, c *credential.Consumer) *proxy.Identity {
	return &proxy.Identity{Authenticator: name, Consumer: c.Name, Groups: c.Groups, Plan: c.Plan}
}
