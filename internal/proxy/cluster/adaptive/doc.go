// Package adaptive holds an adaptive concurrency limiter: it bounds the requests in flight to a
// backend by a limit it derives from the latency it observes, so that a backend is protected from
// overload without a hand-tuned maximum. It follows the gradient limiters of Netflix's
// concurrency-limits (Gradient2) and Envoy's adaptive_concurrency filter.
//
// A request asks Acquire for a slot; when the requests in flight have reached the limit it is
// refused, and the caller sheds it (503, concurrency_limited). When it finishes the caller gives
// its Token back to Release with its round-trip time and whether it succeeded. Acquire is a
// compare-and-swap loop on an atomic counter against an atomic limit, so in-flight never exceeds
// the limit it read; Release takes a mutex to add the outcome to the current sample window. There
// is no goroutine or timer: a window closes in the Release that finds it due.
//
// # Sample windows
//
// A window gathers, since it started, the RTTs of the successful requests released (failed ones
// are not sampled: their RTT says when the caller gave up, not how fast the backend is), the
// number of drops (requests released with ok=false: timeouts, resets), and the most requests in
// flight any of them saw when admitted. It closes once it has lasted SampleWindow and holds at
// least MinSamples outcomes (samples plus drops); a thinner window keeps gathering, which merges
// it into the next. Its short RTT is the mean of its samples: it costs no memory per sample, and
// at least MinSamples of them go into each.
//
// # The limit
//
// When a window closes:
//
//   - The long RTT, an exponentially weighted average over LongWindow windows of the short RTTs
//     (a plain average of the first 10), is updated as described below. If it exceeds twice the
//     short RTT it decays by 5%, so that it comes down quickly once latency falls after a long
//     spell of slowness.
//   - If the window saw a drop, the limit is multiplied by 0.9.
//   - Otherwise gradient = clamp(Tolerance*longRTT/shortRTT, 0.5, 1) and
//     newLimit = limit*gradient + queue, with queue = sqrt(limit), at least 1; then
//     limit = limit*(1-Smoothing) + newLimit*Smoothing. While the short RTT stays within
//     Tolerance of the long one the limit grows by Smoothing*sqrt(limit) a window; beyond it, it
//     shrinks, by at most a fraction Smoothing/2 a window. If the window's most requests in
//     flight were fewer than half the limit the service is app-limited: the load, not the
//     backend, bounds the in-flight, and the limit does not grow (it may still shrink). It does
//     not grow either during the first 10 windows, while the long RTT is first learned.
//   - The limit is clamped to [MinLimit, MaxLimit]; Limit reports its integer part.
//
// Under overload the limit settles where the queue allowance balances the gradient: the short
// RTT at about Tolerance/(1-1/sqrt(limit)) times the long one. For a backend that serves C
// requests at once and queues the rest, that is a limit of about 1.5 to 2 C with the defaults.
//
// # Which windows the long RTT learns from
//
// Gradient2 feeds every window to its long RTT. Under sustained overload that makes the limit
// creep up without bound: the short RTT sits above the long one by the queue the limit allows,
// the long RTT follows it up, the limit grows to keep the ratio, and so on until MaxLimit or the
// clients' own concurrency. So the long RTT here takes a window only when it cannot be measuring
// a queue of this limiter's making:
//
//   - while it is first learned (the first 10 windows);
//   - when the window did not reach the limit and its short RTT is within Tolerance of the long
//     one: the limiter was not what bounded the in-flight;
//   - when the short RTT is at or below the long one: the backend got faster. If the window
//     reached the limit its short RTT, queue included, is an upper bound of the backend's own
//     latency, and the long RTT moves a tenth of the way to it rather than 2/(LongWindow+1).
//
// A window that reached the limit with a short RTT above the long one is never learned: that
// excess is what the gradient acts on. If the backend itself gets slower by more than Tolerance,
// the gradient sheds down to its floor (MinLimit, or 4, where the smallest gradient and the queue
// allowance balance); when 10 windows in a row at the floor are still beyond tolerance the long
// RTT is learned afresh from the next 10 windows, which are at the floor and so free of a queue
// of ours, and the limit holds meanwhile.
//
// What the estimate cannot see: the long RTT is learned in the first windows at InitialLimit,
// so a limiter created while the backend is already overloaded at that concurrency learns a
// queued baseline and settles proportionally too high, until drops bring it down; InitialLimit
// should not be far above what the backend serves at once. Likewise when the backend gets faster
// while the limit is saturated, the long RTT comes down only to the short RTT with the current
// queue in it, and the limit settles higher than it needs until the load eases. Measuring the
// baseline afresh would take shedding down to a few requests from time to time, as Envoy's
// adaptive_concurrency does every minute; this limiter does not.
package adaptive
