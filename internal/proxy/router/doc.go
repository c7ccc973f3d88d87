// Package router selects the route for a request. Compile turns the routes that serve one
// listener into an immutable Table; Table.Match picks the winning route and match for a request's
// host, normalised path, method, headers and query. A Table is safe for concurrent use.
//
// # Conditions
//
// A route serves a request when one of its hosts matches (or it lists none) and one of its
// matches (config.RouteMatch) holds; a match holds when all of its conditions do:
//
//   - Hosts are exact names or "*.suffix" wildcards. A wildcard matches one or more labels before
//     the suffix ("*.example.com" matches "a.example.com" and "a.b.example.com", not
//     "example.com"). Matching ignores ASCII case, the request's port (IPv6 literals such as
//     "[::1]:8080" included) and one trailing dot. A route without hosts, or whose hosts include
//     "*", serves every host.
//   - Path: Exact compares the whole path. Prefix matches whole segments: "/users" matches
//     "/users", "/users/" and "/users/7", not "/usersx"; a trailing slash in the prefix is ignored
//     ("/users/" behaves like "/users"); "/" matches every path. Regex must match the whole path.
//     A match without a path matches every path, as prefix "/".
//   - Method is compared exactly (methods are case-sensitive).
//   - Headers: the name is compared without regard to case, and only the first field with that
//     name is considered (repeated fields are not joined). Value compares exactly, Regex must
//     match the whole value, Present only needs the field.
//   - Query: the raw query is split on '&', names and values are percent-decoded as by
//     url.QueryUnescape ('+' is a space), pairs that fail to decode are ignored, and the first
//     occurrence of a name is the one compared. Value, Regex and Present work as for headers.
//
// Regular expressions are RE2 (package regexp) and are anchored at both ends.
//
// # Precedence
//
// When several (route, match) pairs hold, the winner follows the Kubernetes Gateway API
// HTTPRoute rules, in this order, each criterion deciding only ties of the previous ones:
//
//  1. Host: a route matching the host by an exact name beats one matching by wildcard; a longer
//     wildcard suffix beats a shorter one; any host-specific route beats a route serving every
//     host. The host decides first: a host-specific route with prefix "/" beats a host-less
//     route with an exact path.
//  2. Path kind: Exact, then RegularExpression, then Prefix (the order Envoy Gateway uses; the
//     Gateway API leaves regular expressions to the implementation).
//  3. Within regular expressions the longer expression (in characters, as written) wins; within
//     prefixes the prefix with more characters, as written, wins.
//  4. A match with a method beats one without.
//  5. More header conditions beat fewer.
//  6. More query conditions beat fewer.
//  7. File order: the earlier route wins, and within a route the earlier match. (This takes the
//     place of the Gateway API's oldest-creation-timestamp and name-order rules.)
//
// # Cost
//
// Everything is decided at Compile time. Candidates are sorted by precedence once and bucketed by
// host: one bucket per exact host name, one per wildcard suffix and one for other hosts, with
// wildcard and host-less candidates already merged in the right order into every bucket. Larger
// buckets are also indexed by the first path segment a candidate can match ("/users" for prefix
// "/users/admin", exact "/users/7" or regex "/users/[0-9]+"), each index list keeping precedence
// order. Match lowercases the host without allocating (on the stack when it is not already lower
// case), does one map lookup for the host (walking wildcard suffixes only for hosts no route
// names) and one for the path segment, then scans the remaining candidates in order, testing
// method and exact or prefix paths before regular expressions (guarded by their literal prefix),
// headers and query. The first candidate that holds wins. Match does not allocate unless a query
// parameter's name or value needs percent-decoding.
package router
