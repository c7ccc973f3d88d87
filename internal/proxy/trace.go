package proxy

// AttemptTracer records the upstream attempts of a traced exchange. The engine sets
// Exchange.Trace when tracing is on; it is nil otherwise, and the request path then makes no
// tracing call at all.
type AttemptTracer interface {
	// StartAttempt is called right before attempt x.Attempts (0 without a retry policy: the one
	// attempt) is sent to endpoint. It may add trace context fields to x.Req.Header.
	StartAttempt(x *Exchange, endpoint string)
	// EndAttempt is called when that attempt has ended, with the transport's error (nil: the
	// upstream's response went downstream).
	EndAttempt(x *Exchange, err error)
}
