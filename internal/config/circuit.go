package config

import (
	"strconv"
	"time"
)

// Circuit-breaker and outlier-detection defaults and bounds.
const (
	defaultBreakerMaxConnections     = 1024
	defaultBreakerMaxPendingRequests = 1024
	defaultBreakerMaxRequests        = 1024
	defaultBreakerMaxRetries         = 3
	defaultBreakerOpenFor            = 10 * time.Second
	defaultBreakerHalfOpenRequests   = 1
	defaultOutlierConsecutive5xx     = 5
	defaultOutlierConnectFailures    = 3
	defaultOutlierInterval           = 10 * time.Second
	defaultOutlierBaseEjectionTime   = 30 * time.Second
	defaultOutlierMaxEjectionTime    = 300 * time.Second
	defaultOutlierMaxEjectionPercent = 10
	defaultOutlierPanicThreshold     = 50
	defaultSuccessRateMinimumHosts   = 5
	defaultSuccessRateRequestVolume  = 100
	defaultSuccessRateStdevFactor    = 1.9

	// maxResilienceCount bounds every count of this file, far above any sensible setting.
	maxResilienceCount = 1 << 30
	// maxHalfOpenRequests bounds CircuitBreaker.HalfOpenRequests: probes are meant to be few.
	maxHalfOpenRequests = 1000
	// maxResilienceDuration bounds OpenFor and the ejection times.
	maxResilienceDuration = 24 * time.Hour
	// minOutlierInterval and maxOutlierInterval bound OutlierDetection.Interval: every interval
	// the detector reviews each endpoint.
	minOutlierInterval = 10 * time.Millisecond
	maxOutlierInterval = time.Hour
	// maxStdevFactor bounds SuccessRateOutlier.StdevFactor.
	maxStdevFactor = 100.0

	// The default detector of a service without outlierDetection: connect failures only, short
	// ejections, reviewed often so that an endpoint that comes back is tried again soon.
	defaultDetectorInterval         = time.Second
	defaultDetectorBaseEjectionTime = 5 * time.Second
)

// DefaultOutlierDetection returns the outlier detection of a service that configures none: it
// ejects an endpoint after 3 consecutive connect failures (and for no 5xx answer), for 5s the
// first time and 5s more at each repeat ejection up to 300s, reviews ejections every second, and
// ejects at most 10% of the endpoints at once (one always may, but never a service's last usable
// endpoint). It has no panic threshold, so a service with an active health check and no
// outlierDetection keeps its behaviour when endpoints fail their checks.
func DefaultOutlierDetection() OutlierDetection {
	off, connect, panicOff := 0, defaultOutlierConnectFailures, 0
	return OutlierDetection{
		Consecutive5xx:             &off,
		ConsecutiveConnectFailures: &connect,
		Interval:                   defaultDetectorInterval,
		BaseEjectionTime:           defaultDetectorBaseEjectionTime,
		MaxEjectionTime:            defaultOutlierMaxEjectionTime,
		MaxEjectionPercent:         defaultOutlierMaxEjectionPercent,
		PanicThreshold:             &panicOff,
	}
}

// WithDefaults returns a copy of b with every unset field at its default, for code that builds a
// policy in Go rather than loading it (a loaded config has its defaults already).
func (b CircuitBreaker) WithDefaults() CircuitBreaker {
	circuitBreakerDefaults(&b)
	return b
}

// circuitBreakerDefaults fills the defaults of a service's circuit breaker: 1024 connections,
// pending requests and requests, 3 retries, no consecutive-failure trip (and, for when one is
// set, 10s open and 1 half-open probe).
func circuitBreakerDefaults(b *CircuitBreaker) {
	setDefault(&b.MaxConnections, defaultBreakerMaxConnections)
	setDefault(&b.MaxPendingRequests, defaultBreakerMaxPendingRequests)
	setDefault(&b.MaxRequests, defaultBreakerMaxRequests)
	setDefault(&b.MaxRetries, defaultBreakerMaxRetries)
	setDefault(&b.OpenFor, defaultBreakerOpenFor)
	setDefault(&b.HalfOpenRequests, defaultBreakerHalfOpenRequests)
}

// WithDefaults returns a copy of o with every unset field at its default, for code that builds a
// policy in Go rather than loading it (a loaded config has its defaults already). It shares no
// memory that a later change to either copy would show through.
func (o OutlierDetection) WithDefaults() OutlierDetection {
	if o.SuccessRate != nil {
		sr := *o.SuccessRate
		o.SuccessRate = &sr
	}
	outlierDefaults(&o)
	return o
}

// outlierDefaults fills the defaults of a service's outlier detection: ejection after 5
// consecutive 5xx or 3 consecutive connect failures, a 10s review interval, 30s base and 300s maximum ejection, at most 10% of
// endpoints ejected, panic below 50% usable endpoints, and the success-rate rule's defaults (5
// hosts, 100 requests, 1.9 standard deviations) when it is set.
func outlierDefaults(o *OutlierDetection) {
	if o.Consecutive5xx == nil {
		n := defaultOutlierConsecutive5xx
		o.Consecutive5xx = &n
	}
	if o.ConsecutiveConnectFailures == nil {
		n := defaultOutlierConnectFailures
		o.ConsecutiveConnectFailures = &n
	}
	setDefault(&o.Interval, defaultOutlierInterval)
	setDefault(&o.BaseEjectionTime, defaultOutlierBaseEjectionTime)
	setDefault(&o.MaxEjectionTime, defaultOutlierMaxEjectionTime)
	setDefault(&o.MaxEjectionPercent, defaultOutlierMaxEjectionPercent)
	if o.PanicThreshold == nil {
		p := defaultOutlierPanicThreshold
		o.PanicThreshold = &p
	}
	if sr := o.SuccessRate; sr != nil {
		setDefault(&sr.MinimumHosts, defaultSuccessRateMinimumHosts)
		setDefault(&sr.RequestVolume, defaultSuccessRateRequestVolume)
		setDefault(&sr.StdevFactor, defaultSuccessRateStdevFactor)
	}
}

// checkCircuitBreaker checks a service's circuit breaker at s (a service's "circuitBreaker").
func checkCircuitBreaker(s scope, b *CircuitBreaker) {
	resilienceCount(s.key("maxConnections"), b.MaxConnections, 1, maxResilienceCount)
	resilienceCount(s.key("maxPendingRequests"), b.MaxPendingRequests, 1, maxResilienceCount)
	resilienceCount(s.key("maxRequests"), b.MaxRequests, 1, maxResilienceCount)
	resilienceCount(s.key("maxRetries"), b.MaxRetries, 1, maxResilienceCount)
	resilienceCount(s.key("consecutiveFailures"), b.ConsecutiveFailures, 0, maxResilienceCount)
	resilienceDuration(s.key("openFor"), b.OpenFor, time.Millisecond, maxResilienceDuration)
	resilienceCount(s.key("halfOpenRequests"), b.HalfOpenRequests, 1, maxHalfOpenRequests)
}

// checkOutlier checks a service's outlier detection at s (a service's "outlierDetection").
func checkOutlier(s scope, o *OutlierDetection) {
	if o.Consecutive5xx != nil {
		resilienceCount(s.key("consecutive5xx"), *o.Consecutive5xx, 0, maxResilienceCount)
	}
	resilienceCount(s.key("consecutiveGatewayErrors"), o.ConsecutiveGatewayErrors, 0, maxResilienceCount)
	if o.ConsecutiveConnectFailures != nil {
		resilienceCount(s.key("consecutiveConnectFailures"), *o.ConsecutiveConnectFailures, 0, maxResilienceCount)
	}
	resilienceDuration(s.key("interval"), o.Interval, minOutlierInterval, maxOutlierInterval)
	resilienceDuration(s.key("baseEjectionTime"), o.BaseEjectionTime, time.Millisecond, maxResilienceDuration)
	resilienceDuration(s.key("maxEjectionTime"), o.MaxEjectionTime, time.Millisecond, maxResilienceDuration)
	if o.MaxEjectionTime > 0 && o.BaseEjectionTime > o.MaxEjectionTime {
		// Point at whichever of the two the file sets; the other may be a default.
		if ms := s.key("maxEjectionTime"); s.v.inFile(ms.path) || !s.v.inFile(s.key("baseEjectionTime").path) {
			ms.errorf("%v is less than the base ejection time (%v)", o.MaxEjectionTime, o.BaseEjectionTime)
		} else {
			s.key("baseEjectionTime").errorf("%v is more than the maximum ejection time (%v)", o.BaseEjectionTime, o.MaxEjectionTime)
		}
	}
	resilienceCount(s.key("maxEjectionPercent"), o.MaxEjectionPercent, 1, 100)
	if o.PanicThreshold != nil {
		resilienceCount(s.key("panicThreshold"), *o.PanicThreshold, 0, 100)
	}
	if sr := o.SuccessRate; sr != nil {
		ss := s.key("successRate")
		resilienceCount(ss.key("minimumHosts"), sr.MinimumHosts, 1, maxResilienceCount)
		resilienceCount(ss.key("requestVolume"), sr.RequestVolume, 1, maxResilienceCount)
		if !(sr.StdevFactor > 0 && sr.StdevFactor <= maxStdevFactor) { // also NaN
			ss.key("stdevFactor").errorf("%s is not a factor above 0 and at most %g",
				strconv.FormatFloat(sr.StdevFactor, 'g', -1, 64), maxStdevFactor)
		}
	}
}

// resilienceCount checks that n is in [lo, hi].
func resilienceCount(s scope, n, lo, hi int) {
	switch {
	case n < lo && lo == 0:
		s.errorf("must not be negative")
	case n < lo:
		s.errorf("must be at least %d", lo)
	case n > hi:
		s.errorf("%d is more than the maximum of %d", n, hi)
	}
}

// resilienceDuration checks that d is in [lo, hi].
func resilienceDuration(s scope, d, lo, hi time.Duration) {
	switch {
	case d <= 0:
		s.errorf("must be above 0")
	case d < lo:
		s.errorf("%v is less than the minimum of %v", d, lo)
	case d > hi:
		s.errorf("%v is more than the maximum of %v", d, hi)
	}
}
