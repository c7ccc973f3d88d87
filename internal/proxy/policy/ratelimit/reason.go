package ratelimit

// Reason codes of the responses a limiter produces, stable like those of package proxy.
const (
	// ReasonRateLimited marks a 429: the request was over its route's rate limit.
	ReasonRateLimited = "rate_limited"
	// ReasonRateLimitUnavailable marks a 503: the global limit's Redis server could not answer in
	// time and the policy does not fail open.
	ReasonRateLimitUnavailable = "rate_limit_unavailable"
)

// Decisions a limiter reports through Options.OnDecision, one per request.
const (
	// DecisionAdmitted means every configured limit admitted the request.
	DecisionAdmitted = "admitted"
	// DecisionLimited means a limit refused the request with 429.
	DecisionLimited = "limited"
	// DecisionUnavailable means Redis could not answer and the request got 503.
	DecisionUnavailable = "unavailable"
	// DecisionFailedOpen means Redis could not answer and the request was admitted anyway.
	DecisionFailedOpen = "failed_open"
)
