// Package authz compiles a route's authorization policy (config.AuthzPolicy) and decides, for
// each request, whether it may proceed. Compile checks and compiles everything once (regular
// expressions, CIDRs, CEL expressions); the resulting Policy is immutable and safe for concurrent
// use, and Decide does not allocate unless a rule with a CEL expression has to be evaluated.
//
// # Precedence
//
// Every rule is considered. If any deny rule matches, the request is denied and the first
// matching deny rule (in file order) is named. Otherwise the first matching allow rule admits it.
// Otherwise the policy's default decides ("deny" when unset) and the decision names the rule
// "default". DefaultDeny is the policy of a listener with defaultDeny for routes without one.
//
// # Conditions
//
// A rule matches when every condition it sets holds; an empty list is an unset condition, and a
// rule must set at least one. A list condition holds when any of its entries matches, except
// Headers and Claims, whose entries must all match.
//
//   - Consumers: the authenticated consumer's name, compared exactly. "*" matches any request
//     authenticated as some consumer; a request authenticated without a consumer (for example a
//     JWT whose subject maps to none) matches no Consumers condition, and neither does an
//     anonymous one.
//   - Groups: any of the consumer's groups equals an entry.
//   - Claims: for each ClaimMatch, the verified JWT's claim is a string equal to one of Values, or
//     a list ([]any or []string) with a string element equal to one of them. A claim named
//     "scope" whose value is a string is, by the OAuth 2.0 convention (RFC 6749 section 3.3),
//     a list of tokens separated by spaces: "read write" matches the value "write" but not
//     "read write", so scope values containing a space are refused by Compile. Numbers,
//     booleans and objects never match. Requests without claims (anonymous, or authenticated
//     without a JWT) match no Claims condition.
//   - Methods: compared exactly; methods are case-sensitive, so "get" is not "GET".
//   - Paths: the normalised path the router matched, compared byte for byte with the router's
//     rules: Exact compares the whole path; Prefix matches whole segments ("/admin" matches
//     "/admin", "/admin/" and "/admin/x", not "/adminx"), ignores a trailing slash in the prefix,
//     and "/" matches every path; Regex (RE2) must match the whole path. Paths are
//     case-sensitive (RFC 3986 section 6.2.2.1), as in the router: "/ADMIN" is a different path
//     from "/admin" and routes separately. Normalisation has already resolved dot segments,
//     repeated slashes and escaped unreserved characters, so "/x/../admin" and "/%61dmin"
//     arrive as "/admin", and refused dot segments with parameters such as "/x/..;/admin".
//     Exact and Prefix ignore segment parameters, in deny and allow rules alike: in every
//     segment, ';' and what follows it up to the next '/' are left out of the comparison (a
//     segment of nothing but parameters is left out whole), as upstreams that strip matrix
//     parameters do, so "/admin;x", "/admin;x/y" and "/;x/admin" are under "/admin", and
//     "/public;jsessionid=1" is under "/public". Regex sees the path with its parameters.
//   - Headers: the name is compared without regard to case. Value compares exactly, Regex (RE2)
//     must match the whole value, Present only needs the field. Unlike route matching, every
//     field with the name is considered: a header sent several times matches when any of its
//     field values does.
//   - SourceCIDRs: the client address (after trusted-proxy resolution) lies in one of the
//     CIDRs, or equals one of the single addresses. IPv4-mapped IPv6 addresses are unmapped on
//     both sides first, so "::ffff:10.0.0.1" matches "10.0.0.0/8"; an IPv6 zone is ignored. An
//     invalid address matches nothing.
//   - CEL: a Common Expression Language expression of type bool; see below.
//
// Conditions are tested cheapest first, and the CEL expression last, so it only runs when every
// other condition of its rule holds.
//
// # CEL
//
// Expressions see four variables, each a map from string keys to values:
//
//   - request: method, path (normalised) and host (the authority as received, possibly with a
//     port) as strings, and headers, a map from lower-case header name to value, where the values
//     of a header sent several times are joined with ",".
//   - source: ip, the client address as a string (IPv4-mapped addresses unmapped, "" when
//     unknown).
//   - consumer: name, the consumer's name ("" when anonymous or without a consumer), and groups,
//     a list of strings (empty when none).
//   - jwt: claims, the verified JWT's claims as decoded from JSON (empty when there is no JWT).
//
// For example: `request.method == "GET" && "x-debug" in request.headers` or
// `jwt.claims.roles.exists(r, r.startsWith("admin-"))`.
//
// Compile refuses an expression that does not parse, does not type-check or whose type is not
// bool (`jwt.claims.admin` has type dyn: write `jwt.claims.admin == true`). The macros has, all,
// exists and exists_one are available; map and filter, which build lists, are not. Each
// evaluation is limited to MaxCELCost; an expression that exceeds it stops with an error.
//
// An evaluation error (a missing map key such as request.headers["x-absent"], a type mismatch
// at run time, the cost limit) fails closed: an allow rule whose expression fails does not
// match, and a deny rule whose expression fails matches. Test for presence with `in` or has()
// to avoid such errors.
package authz
