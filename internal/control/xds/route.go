package xds

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshgate/meshgate/internal/config"
)

// buildRouteConfig builds the RouteConfiguration named host: one virtual host for host (with and
// without a port) whose routes are the config's routes attached to svc, most specific first, then
// a default route to svc's own cluster.
func buildRouteConfig(cfg *config.Config, svc *config.Service, host string) (*routev3.RouteConfiguration, error) {
	lbs := make(map[string]*config.LoadBalancer, len(cfg.Services))
	for i := range cfg.Services {
		lbs[cfg.Services[i].Name] = &cfg.Services[i].LoadBalancer
	}
	var cands []candidate
	for i := range cfg.Routes {
		r := &cfg.Routes[i]
		if r.Service != svc.Name {
			continue
		}
		matches := r.Match
		if len(matches) == 0 {
			matches = []config.RouteMatch{{}}
		}
		for j := range matches {
			cands = append(cands, newCandidate(r, &matches[j], len(cands)))
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].less(&cands[j]) })

	var routes []*routev3.Route
	for _, c := range cands {
		rs, err := buildRoutes(c.route, c.match, lbs)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", c.route.Name, err)
		}
		routes = append(routes, rs...)
	}
	def := &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: svc.Name},
		HashPolicy:       hashPolicy(&svc.LoadBalancer),
	}
	routes = append(routes, &routev3.Route{
		Name:   "default",
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_Route{Route: def},
	})
	return &routev3.RouteConfiguration{
		Name: host,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    host,
			Domains: []string{host, host + ":*"},
			Routes:  routes,
		}},
	}, nil
}

// candidate is one (route, match) pair, ranked as meshgate's router ranks them (Gateway API
// precedence: exact path, then regex, then prefix, longer first; then a method; then more
// header and query conditions; then file order), since Envoy and gRPC take the first route that
// matches.
type candidate struct {
	route *config.Route
	match *config.RouteMatch
	kind  int // 0 exact, 1 regex, 2 prefix
	size  int
	order int
}

func newCandidate(r *config.Route, m *config.RouteMatch, order int) candidate {
	c := candidate{route: r, match: m, kind: 2, size: 1, order: order}
	if p := m.Path; p != nil {
		switch {
		case p.Exact != "":
			c.kind, c.size = 0, len(p.Exact)
		case p.Regex != "":
			c.kind, c.size = 1, len(p.Regex)
		case p.Prefix != "":
			c.size = len(p.Prefix)
		}
	}
	return c
}

func (a *candidate) less(b *candidate) bool {
	if a.kind != b.kind {
		return a.kind < b.kind
	}
	if a.kind != 0 && a.size != b.size {
		return a.size > b.size
	}
	if am, bm := a.match.Method != "", b.match.Method != ""; am != bm {
		return am
	}
	if len(a.match.Headers) != len(b.match.Headers) {
		return len(a.match.Headers) > len(b.match.Headers)
	}
	if len(a.match.Query) != len(b.match.Query) {
		return len(a.match.Query) > len(b.match.Query)
	}
	return a.order < b.order
}

// buildRoutes translates one match of a route. A segment prefix ("/users" matches "/users" and
// "/users/7", not "/usersx") becomes two routes, path "/users" and prefix "/users/", which both
// Envoy and proxyless gRPC understand.
func buildRoutes(r *config.Route, m *config.RouteMatch, lbs map[string]*config.LoadBalancer) ([]*routev3.Route, error) {
	headers, err := headerMatchers(m)
	if err != nil {
		return nil, err
	}
	query, err := queryMatchers(m.Query)
	if err != nil {
		return nil, err
	}
	rewrite := rewriteOf(r)
	var matches []*routev3.RouteMatch
	var prefixRewrites []string // per match; "" keeps the path
	add := func(rm *routev3.RouteMatch, pr string) {
		rm.Headers, rm.QueryParameters = headers, query
		matches = append(matches, rm)
		prefixRewrites = append(prefixRewrites, pr)
	}
	p := m.Path
	switch {
	case p != nil && p.Exact != "":
		add(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: p.Exact}}, "")
	case p != nil && p.Regex != "":
		if _, err := regexp.Compile(p.Regex); err != nil {
			return nil, fmt.Errorf("path regex: %w", err)
		}
		add(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: safeRegex(p.Regex)}}, "")
	default:
		prefix := "/"
		if p != nil && p.Prefix != "" {
			prefix = p.Prefix
		}
		trimmed := strings.TrimRight(prefix, "/")
		if trimmed == "" {
			pr := ""
			if rewrite != nil && rewrite.PathPrefix != "" {
				pr = strings.TrimRight(rewrite.PathPrefix, "/") + "/"
			}
			add(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, pr)
			break
		}
		exactPR, prefixPR := "", ""
		if rewrite != nil && rewrite.PathPrefix != "" {
			exactPR = rewrite.PathPrefix
			prefixPR = strings.TrimRight(rewrite.PathPrefix, "/") + "/"
		}
		add(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: trimmed}}, exactPR)
		add(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: trimmed + "/"}}, prefixPR)
	}

	var out []*routev3.Route
	for i, rm := range matches {
		route := &routev3.Route{Name: r.Name, Match: rm}
		if err := setAction(route, r, prefixRewrites[i], lbs); err != nil {
			return nil, err
		}
		setHeaderEdits(route, r)
		out = append(out, route)
	}
	return out, nil
}

// setAction sets the route's action: a fixed response or a redirect when a filter answers the
// request itself, otherwise forwarding to the weighted backends.
func setAction(route *routev3.Route, r *config.Route, prefixRewrite string, lbs map[string]*config.LoadBalancer) error {
	for _, f := range r.Filters {
		if f.Respond != nil {
			status := f.Respond.Status
			if status == 0 {
				status = 200
			}
			dr := &routev3.DirectResponseAction{Status: uint32(status)}
			if f.Respond.Body != "" {
				dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: f.Respond.Body}}
			}
			route.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
			return nil
		}
		if f.Redirect != nil {
			route.Action = &routev3.Route_Redirect{Redirect: redirect(f.Redirect, prefixRewrite)}
			return nil
		}
	}
	action := &routev3.RouteAction{}
	var weighted []*routev3.WeightedCluster_ClusterWeight
	for _, b := range r.Backends {
		w := 1
		if b.Weight != nil {
			w = *b.Weight
		}
		if w <= 0 {
			continue
		}
		weighted = append(weighted, &routev3.WeightedCluster_ClusterWeight{Name: b.Service, Weight: wrapperspb.UInt32(uint32(w))})
		if action.HashPolicy == nil {
			if lb := lbs[b.Service]; lb != nil {
				action.HashPolicy = hashPolicy(lb)
			}
		}
	}
	switch len(weighted) {
	case 0:
		// Every backend has weight 0: nothing may receive the traffic.
		route.Action = &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 503}}
		return nil
	case 1:
		action.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: weighted[0].Name}
	default:
		action.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: &routev3.WeightedCluster{Clusters: weighted}}
	}
	if r.Timeout != nil {
		action.Timeout = durationpb.New(*r.Timeout)
		if *r.Timeout > 0 {
			action.MaxStreamDuration = &routev3.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(*r.Timeout)}
		}
	}
	if rp := retryPolicy(r.Retry); rp != nil {
		action.RetryPolicy = rp
	}
	if prefixRewrite != "" {
		action.PrefixRewrite = prefixRewrite
	}
	if rw := rewriteOf(r); rw != nil {
		if rw.Path != "" {
			action.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: safeRegex("^.*$"), Substitution: rw.Path}
		}
		if rw.Host != "" {
			action.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: rw.Host}
		}
	}
	route.Action = &routev3.Route_Route{Route: action}
	return nil
}

// rewriteOf returns the route's rewrite filter, if any.
func rewriteOf(r *config.Route) *config.Rewrite {
	for _, f := range r.Filters {
		if f.Rewrite != nil {
			return f.Rewrite
		}
	}
	return nil
}

// redirect maps a redirect filter.
func redirect(rd *config.Redirect, prefixRewrite string) *routev3.RedirectAction {
	out := &routev3.RedirectAction{HostRedirect: rd.Host, PortRedirect: uint32(rd.Port)}
	if rd.Scheme != "" {
		out.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: rd.Scheme}
	}
	switch {
	case rd.Path != "":
		out.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: rd.Path}
	case rd.PathPrefix != "":
		pr := prefixRewrite
		if pr == "" {
			pr = rd.PathPrefix
		}
		out.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: pr}
	}
	switch rd.Status {
	case 301:
		out.ResponseCode = routev3.RedirectAction_MOVED_PERMANENTLY
	case 303:
		out.ResponseCode = routev3.RedirectAction_SEE_OTHER
	case 307:
		out.ResponseCode = routev3.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		out.ResponseCode = routev3.RedirectAction_PERMANENT_REDIRECT
	default:
		out.ResponseCode = routev3.RedirectAction_FOUND
	}
	return out
}

// setHeaderEdits maps the request and response header filters (remove, then set, then add).
func setHeaderEdits(route *routev3.Route, r *config.Route) {
	for _, f := range r.Filters {
		if h := f.RequestHeaders; h != nil {
			route.RequestHeadersToRemove = append(route.RequestHeadersToRemove, h.Remove...)
			route.RequestHeadersToAdd = append(route.RequestHeadersToAdd, headerOptions(h)...)
		}
		if h := f.ResponseHeaders; h != nil {
			route.ResponseHeadersToRemove = append(route.ResponseHeadersToRemove, h.Remove...)
			route.ResponseHeadersToAdd = append(route.ResponseHeadersToAdd, headerOptions(h)...)
		}
	}
}

func headerOptions(h *config.HeaderFilter) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, kv := range sortedPairs(h.Set) {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(kv[0]), Value: kv[1]},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, kv := range sortedPairs(h.Add) {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(kv[0]), Value: kv[1]},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

func sortedPairs(m map[string]string) [][2]string {
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// headerMatchers maps the method and header conditions. Names are lower-cased: HTTP/2 and gRPC
// metadata keys are, and gRPC never matches a name with an upper-case letter.
func headerMatchers(m *config.RouteMatch) ([]*routev3.HeaderMatcher, error) {
	var out []*routev3.HeaderMatcher
	if m.Method != "" {
		out = append(out, &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: m.Method}},
		}})
	}
	for _, h := range m.Headers {
		hm := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name)}
		switch {
		case h.Present:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		case h.Regex != "":
			if _, err := regexp.Compile(h.Regex); err != nil {
				return nil, fmt.Errorf("header %q regex: %w", h.Name, err)
			}
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: safeRegex(h.Regex)},
			}}
		default:
			hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Value},
			}}
		}
		out = append(out, hm)
	}
	return out, nil
}

// queryMatchers maps query conditions. (Proxyless gRPC skips routes with query conditions.)
func queryMatchers(qs []config.QueryMatch) ([]*routev3.QueryParameterMatcher, error) {
	var out []*routev3.QueryParameterMatcher
	for _, q := range qs {
		qm := &routev3.QueryParameterMatcher{Name: q.Name}
		switch {
		case q.Present:
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		case q.Regex != "":
			if _, err := regexp.Compile(q.Regex); err != nil {
				return nil, fmt.Errorf("query %q regex: %w", q.Name, err)
			}
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: safeRegex(q.Regex)},
			}}
		default:
			qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: q.Value},
			}}
		}
		out = append(out, qm)
	}
	return out, nil
}

// safeRegex wraps an RE2 expression; Envoy's safe_regex matches the whole input.
func safeRegex(re string) *matcherv3.RegexMatcher {
	return &matcherv3.RegexMatcher{Regex: re}
}

// hashPolicy returns the route hash policy a consistent-hashing service needs, or nil.
func hashPolicy(lb *config.LoadBalancer) []*routev3.RouteAction_HashPolicy {
	if lb == nil || lb.Hash == nil || (lb.Policy != config.LBRingHash && lb.Policy != config.LBMaglev) {
		return nil
	}
	h := lb.Hash
	switch {
	case h.Header != "":
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Header_{
			Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: strings.ToLower(h.Header)},
		}}}
	case h.Cookie != "":
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_Cookie_{
			Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie},
		}}}
	case h.SourceIP:
		return []*routev3.RouteAction_HashPolicy{{PolicySpecifier: &routev3.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}}}
	}
	return nil
}

// retryOn maps retry conditions to Envoy's retry_on names.
var retryOn = map[string]string{
	config.RetryOnConnectFailure:  "connect-failure",
	config.RetryOnRefusedStream:   "refused-stream",
	config.RetryOnReset:           "reset",
	config.RetryOnGatewayError:    "gateway-error",
	config.RetryOn5xx:             "5xx",
	config.RetryOnRetriableStatus: "retriable-status-codes",
}

// grpcRetryOn maps gRPC status names and numbers to the retry_on names Envoy and gRPC know.
var grpcRetryOn = map[string]string{
	"cancelled": "cancelled", "canceled": "cancelled", "1": "cancelled",
	"deadline_exceeded": "deadline-exceeded", "deadline-exceeded": "deadline-exceeded", "4": "deadline-exceeded",
	"resource_exhausted": "resource-exhausted", "resource-exhausted": "resource-exhausted", "8": "resource-exhausted",
	"internal": "internal", "13": "internal",
	"unavailable": "unavailable", "14": "unavailable",
}

// retryPolicy maps a retry policy: attempts (first included) become num_retries; conditions
// without an xDS equivalent (other gRPC codes) are dropped; the budget has none.
func retryPolicy(rp *config.RetryPolicy) *routev3.RetryPolicy {
	if rp == nil {
		return nil
	}
	attempts := rp.Attempts
	if attempts == 0 {
		attempts = 2
	}
	if attempts < 2 {
		return nil
	}
	on := rp.On
	if len(on) == 0 {
		on = []string{config.RetryOnConnectFailure, config.RetryOnRefusedStream, config.RetryOnReset, config.RetryOnGatewayError}
	}
	var names []string
	seen := map[string]bool{}
	addName := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, c := range on {
		if c == config.RetryOnRetriableGRPC {
			for _, g := range rp.GRPCStatuses {
				addName(grpcRetryOn[strings.ToLower(strings.TrimSpace(g))])
			}
			continue
		}
		addName(retryOn[c])
	}
	if len(names) == 0 {
		return nil
	}
	out := &routev3.RetryPolicy{
		RetryOn:       strings.Join(names, ","),
		NumRetries:    wrapperspb.UInt32(uint32(attempts - 1)),
		PerTryTimeout: dur(rp.PerTryTimeout),
	}
	if seen["retriable-status-codes"] {
		for _, s := range rp.Statuses {
			out.RetriableStatusCodes = append(out.RetriableStatusCodes, uint32(s))
		}
	}
	if b := rp.Backoff; b.Base > 0 {
		out.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(b.Base)}
		if b.Max >= b.Base {
			out.RetryBackOff.MaxInterval = durationpb.New(b.Max)
		}
	}
	return out
}
