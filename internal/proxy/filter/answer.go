package filter

import (
	"net"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Redirect returns a handler that answers with a redirect built from the request.
func Redirect(r *config.Redirect) proxy.Handler {
	rd := *r
	return proxy.HandlerFunc(func(x *proxy.Exchange) error {
		loc := RedirectLocation(&rd, x.Scheme, x.Req.Host, x.Req.Path, x.MatchedPrefix, x.Req.Query)
		return proxy.Respond(x, rd.Status, proxy.ReasonRedirect, "", "",
			httpmsg.Field{Name: "Location", Value: loc})
	})
}

// RedirectLocation builds the Location of a redirect from the request's scheme, authority, path,
// matched prefix and query, changing the parts rd sets.
func RedirectLocation(rd *config.Redirect, scheme, authority, path, matchedPrefix, query string) string {
	host, port := authority, ""
	if h, p, err := net.SplitHostPort(authority); err == nil {
		host, port = h, p
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	newScheme := scheme
	if rd.Scheme != "" && rd.Scheme != scheme {
		newScheme = rd.Scheme
		port = ""
	}
	if rd.Host != "" {
		host = rd.Host
	}
	if rd.Port != 0 {
		port = strconv.Itoa(rd.Port)
	}
	if (newScheme == "http" && port == "80") || (newScheme == "https" && port == "443") {
		port = ""
	}
	switch {
	case rd.Path != "":
		path = rd.Path
	case rd.PathPrefix != "" && matchedPrefix != "":
		path = ReplacePrefix(path, matchedPrefix, rd.PathPrefix)
	}
	var b strings.Builder
	b.Grow(len(newScheme) + len(host) + len(path) + len(query) + 10)
	b.WriteString(newScheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	b.WriteString(path)
	if query != "" {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// FixedResponse returns a handler that answers with a fixed response.
func FixedResponse(r *config.Respond) proxy.Handler {
	status, body, ctype := r.Status, r.Body, r.ContentType
	if body != "" && ctype == "" {
		ctype = "text/plain; charset=utf-8"
	}
	return proxy.HandlerFunc(func(x *proxy.Exchange) error {
		return proxy.Respond(x, status, proxy.ReasonDirectResponse, ctype, body)
	})
}
