package config

import (
	"strconv"
	"strings"
)

// maxRetryAttempts bounds RetryPolicy.Attempts.
const maxRetryAttempts = 10

// grpcCodes maps the gRPC status code names a retry policy may list to their numbers.
var grpcCodes = map[string]int{
	"cancelled": 1, "unknown": 2, "invalid_argument": 3, "deadline_exceeded": 4, "not_found": 5,
	"already_exists": 6, "permission_denied": 7, "resource_exhausted": 8, "failed_precondition": 9,
	"aborted": 10, "out_of_range": 11, "unimplemented": 12, "internal": 13, "unavailable": 14,
	"data_loss": 15, "unauthenticated": 16,
}

// GRPCCode returns the number of a gRPC status given by name ("unavailable") or number ("14").
func GRPCCode(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= 16
	}
	n, ok := grpcCodes[strings.ToLower(s)]
	return n, ok
}

// checkRetry checks a route's retry policy.
func checkRetry(s scope, p *RetryPolicy) {
	if p.Attempts < 1 || p.Attempts > maxRetryAttempts {
		s.key("attempts").errorf("must be between 1 and %d", maxRetryAttempts)
	}
	seen := map[string]bool{}
	for i, on := range p.On {
		os := s.key("on").index(i)
		checkOneOf(os, on, RetryOnConnectFailure, RetryOnRefusedStream, RetryOnReset, RetryOnGatewayError,
			RetryOn5xx, RetryOnRetriableStatus, RetryOnRetriableGRPC)
		if seen[on] {
			os.errorf("%q is listed twice", on)
		}
		seen[on] = true
	}
	if len(p.Statuses) > 0 && !seen[RetryOnRetriableStatus] {
		s.key("statuses").errorf(`takes effect only when "on" lists %q`, RetryOnRetriableStatus)
	}
	for i, st := range p.Statuses {
		if st < 400 || st > 599 {
			s.key("statuses").index(i).errorf("%d is not a 4xx or 5xx status", st)
		}
	}
	if len(p.GRPCStatuses) > 0 && !seen[RetryOnRetriableGRPC] {
		s.key("grpcStatuses").errorf(`takes effect only when "on" lists %q`, RetryOnRetriableGRPC)
	}
	for i, g := range p.GRPCStatuses {
		if _, ok := GRPCCode(g); !ok {
			s.key("grpcStatuses").index(i).errorf("%q is not a gRPC status code name (such as \"unavailable\") or number 1-16", g)
		}
	}
	checkNotNegative(s.key("perTryTimeout"), p.PerTryTimeout)
	checkNotNegative(s.key("backoff").key("base"), p.Backoff.Base)
	checkNotNegative(s.key("backoff").key("max"), p.Backoff.Max)
	if p.Backoff.Max < p.Backoff.Base {
		s.key("backoff").key("max").errorf("%s is less than the base (%s)", p.Backoff.Max, p.Backoff.Base)
	}
	if p.Budget.Percent < 0 || p.Budget.Percent > 100 {
		s.key("budget").key("percent").errorf("must be between 0 and 100")
	}
	if p.Budget.MinPerSecond < 0 {
		s.key("budget").key("minPerSecond").errorf("must not be negative")
	}
	if p.BufferBytes < 0 || p.BufferBytes > 16<<20 {
		s.key("bufferBytes").errorf("must be between 0 and 16777216")
	}
}
