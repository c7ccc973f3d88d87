package ratelimit

import "github.com/meshgate/meshgate/internal/proxy"

// Reason codes of the responses a limiter produces; they are defined with the others in package proxy.
const (
	// ReasonRateLimited marks a 429: the request was over its route's rate limit.
	ReasonRateLimited = proxy.ReasonRateLimited
	// ReasonRateLimitUnavailable marks a 503: the global limit's Redis server could not answer in
	// time and the policy does not fail open.
	ReasonRateLimitUnavailable = proxy.ReasonRateLimitDown
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
