// Package ratelimit is the rate-limiting policy of a route: a token bucket per key in this process
// (local), a GCRA limit shared by every replica through Redis (global), or both.
//
// # Algorithms
//
// A local limit is a token bucket of Burst tokens refilled at Rate tokens per second; a request
// takes one token or is refused. Each bucket is kept in its GCRA form, as one "theoretical arrival
// time" (TAT) updated with compare-and-swap, so a decision takes no lock. Buckets are kept per key
// (the route as a whole, the client address, or a header value) in a sharded table bounded by
// MaxKeys, which forgets keys with the CLOCK algorithm (an approximation of least recently used:
// a key seen once is forgotten before a key seen again).
//
// A global limit runs the same algorithm atomically in Redis with a Lua script (EVALSHA, falling
// back to EVAL when the server does not have the script cached). The script reads the time from
// Redis (TIME), so every replica measures against one clock, and stores the TAT under
// "meshgate:rl:<route>" (a route-wide limit) or "meshgate:rl:<route>:<key>", with ':' and '%' in
// the route name percent-encoded and keys longer than 200 bytes replaced by "sha256:<hex>". The
// key expires when its bucket would be full again. When Redis refuses a key until time T, this
// process refuses that key without asking Redis until T (a deny cache): Redis could not admit it
// before T anyway, since other replicas only move T later. Each Redis call is bounded by the
// policy's Timeout; when Redis cannot answer in time, a FailOpen policy admits the request and any
// other answers 503 with reason "rate_limit_unavailable".
//
// When a route has both, the local limit decides first, and a request the global limit refuses
// gives its local token back.
//
// # Response headers
//
// A refused request gets 429 with reason "rate_limited" and these fields, in the structured-field
// syntax of draft-ietf-httpapi-ratelimit-headers (drafts 08 and 09):
//
//	Retry-After: 1
//	RateLimit-Policy: "default";q=20;w=1
//	RateLimit: "default";r=0;t=1
//
// Retry-After is the seconds until the next request of the key will be admitted, rounded up, at
// least 1. In RateLimit-Policy, q is the burst (the quota a full bucket holds) and w the seconds a
// drained bucket takes to fill up again (Burst/Rate), rounded up, at least 1. In RateLimit, r is
// the tokens left after this request and t the seconds until the bucket is full again (r back
// to q), rounded up. A request that is admitted and answered by the upstream carries the same two
// RateLimit fields on its response, replacing any the upstream sent. When both a local and a
// global limit apply, the fields describe the one with fewer tokens left.
package ratelimit
