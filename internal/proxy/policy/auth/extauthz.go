package auth

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
	"github.com/meshgate/meshgate/internal/security/credential"
)

// maxExtAuthzBody is the most of a denial's body relayed to the client.
const maxExtAuthzBody = 4 << 10

// defaultForwardHeaders are the request headers sent to an authorization service by default.
var defaultForwardHeaders = []string{"Authorization", "Cookie", "X-Forwarded-For", "X-Forwarded-Proto",
	"X-Forwarded-Host", "Forwarded", "X-Request-Id"}

// ExtAuthz asks an external HTTP service to admit each request, as Envoy's ext_authz does: the
// request's method and path (under the service URL's path) and selected headers, no body. A 2xx
// admits, copying the listed answer headers to the upstream request; any other answer is relayed
// to the client with reason "ext_authz_denied"; a failure or timeout refuses with 503
// "ext_authz_unavailable" unless the authenticator fails open.
type ExtAuthz struct {
	name     string
	base     string // the service URL without a trailing slash
	client   *http.Client
	timeout  time.Duration
	failOpen bool
	forward  []string
	upstream []string
	consumer string
	dir      *credential.Directory
}

var _ Authenticator = (*ExtAuthz)(nil)

// NewExtAuthz returns the external authorization authenticator name configured by c.
func NewExtAuthz(name string, c *config.ExtAuthz, dir *credential.Directory) *ExtAuthz {
	fwd := c.ForwardHeaders
	if len(fwd) == 0 {
		fwd = defaultForwardHeaders
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: c.Timeout}).DialContext,
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  c.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &ExtAuthz{name: name, base: strings.TrimRight(c.URL, "/"), timeout: c.Timeout, failOpen: c.FailOpen,
		client:  &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		forward: fwd, upstream: c.UpstreamHeaders, consumer: c.ConsumerHeader, dir: dir}
}

// Close releases the authenticator's idle connections.
func (a *ExtAuthz) Close() { a.client.CloseIdleConnections() }

// Name implements Authenticator.
func (a *ExtAuthz) Name() string { return a.name }

// Challenge implements Authenticator: the service answers for itself.
func (a *ExtAuthz) Challenge() string { return "" }

// Authenticate implements Authenticator. Every request "carries" what the service judges.
func (a *ExtAuthz) Authenticate(x *proxy.Exchange) (*proxy.Identity, bool, error) {
	ctx, cancel := x.CallContext(a.timeout)
	defer cancel()
	target := a.base + x.Req.Path
	if x.Req.Query != "" {
		target += "?" + x.Req.Query
	}
	req, err := http.NewRequestWithContext(ctx, x.Req.Method, target, nil)
	if err != nil {
		return a.unavailable(fmt.Errorf("auth: %s: building the check: %w", a.name, err))
	}
	req.Host = x.Req.Host
	for _, name := range a.forward {
		for _, f := range x.Req.Header {
			if httpmsg.EqualFold(f.Name, name) {
				req.Header.Add(name, f.Value)
			}
		}
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if x.Ctx != nil && x.Ctx.Err() != nil {
			return nil, true, proxy.Fail(499, proxy.ReasonDownstreamReset, err)
		}
		return a.unavailable(fmt.Errorf("auth: %s: %w", a.name, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, true, a.deny(x, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxExtAuthzBody))
	for _, name := range a.upstream {
		x.Req.Header.Del(name)
		for _, v := range resp.Header.Values(name) {
			if safeHeaderValue(v) {
				x.Req.Header.Add(name, v)
			}
		}
	}
	id := &proxy.Identity{Authenticator: a.name}
	if a.consumer != "" {
		if name := resp.Header.Get(a.consumer); name != "" {
			if c, ok := a.dir.ByName(name); ok {
				id = identity(a.name, c)
			} else if safeHeaderValue(name) {
				id.Consumer = name
			}
		}
	}
	return id, true, nil
}

// unavailable refuses (or, failing open, admits anonymously) a request the service could not judge.
func (a *ExtAuthz) unavailable(err error) (*proxy.Identity, bool, error) {
	if a.failOpen {
		return nil, true, nil
	}
	return nil, true, proxy.Fail(503, proxy.ReasonExtAuthzDown, err)
}

// deny relays the service's refusal: its status (403 when it is not an error status), its
// WWW-Authenticate and Location headers, and at most maxExtAuthzBody of its body.
func (a *ExtAuthz) deny(x *proxy.Exchange, resp *http.Response) error {
	status := resp.StatusCode
	if status < 300 || status > 599 {
		status = 403
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxExtAuthzBody))
	var extra []httpmsg.Field
	for _, name := range []string{"WWW-Authenticate", "Location"} {
		for _, v := range resp.Header.Values(name) {
			if safeHeaderValue(v) {
				extra = append(extra, httpmsg.Field{Name: name, Value: v})
			}
		}
	}
	ct := resp.Header.Get("Content-Type")
	if !safeHeaderValue(ct) {
		ct = ""
	}
	x.Err = fmt.Errorf("auth: %s: the authorization service answered %d", a.name, resp.StatusCode)
	if err := proxy.Respond(x, status, proxy.ReasonExtAuthzDenied, ct, string(body), extra...); err != nil {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, errors.Join(errAnswered, err))
	}
	return errAnswered
}
