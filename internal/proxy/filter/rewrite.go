package filter

import (
	"strings"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
)

// ReplacePrefix replaces the matched prefix of path with repl on a segment boundary, the way the
// Gateway API's ReplacePrefixMatch does: "/users/7" with prefix "/users" and repl "/" is "/7", and
// with repl "/v2/people" it is "/v2/people/7".
func ReplacePrefix(path, prefix, repl string) string {
	prefix = strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(path, prefix) {
		return path
	}
	rest := path[len(prefix):] // "" or starts with "/"
	if repl == "" || repl == "/" {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return strings.TrimSuffix(repl, "/") + rest
}

// Rewrite returns a middleware that changes the path or host sent upstream.
func Rewrite(r *config.Rewrite) proxy.Middleware {
	rw := *r
	return func(next proxy.Handler) proxy.Handler {
		return proxy.HandlerFunc(func(x *proxy.Exchange) error {
			switch {
			case rw.Path != "":
				x.Req.Path = rw.Path
			case rw.PathPrefix != "" && x.MatchedPrefix != "":
				x.Req.Path = ReplacePrefix(x.Req.Path, x.MatchedPrefix, rw.PathPrefix)
			}
			if rw.Host != "" {
				x.Req.Host = rw.Host
			}
			return next.Serve(x)
		})
	}
}
