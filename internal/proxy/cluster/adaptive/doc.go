// Package adaptive holds an adaptive concurrency limiter: it bounds the requests in flight to a
// backend by a limit it derives from the latency it observes, so that a backend is protected from
// overload without a hand-tuned maximum. It follows the gradient limiters of Netflix's
// concurrency-limits (Gradient2) and Envoy's adaptive_concurrency filter, whose way of measuring
// the baseline latency (minRTT) by probing at a low concurrency it takes.
//
// A request asks Acquire for a slot; when the requests in flight have reached the limit it is
// refused, and the caller sheds it (503, concurrency_limited). When it finishes the caller gives
// its Token back to Release with its round-trip time and whether it succeeded. Acquire is a
// compare-and-swap loop on an atomic counter against an atomic limit, so in-flight never exceeds
// the limit it read; Release takes a mutex to add the outcome to the current sample window or
// probe. There is no goroutine or timer: a window closes, and a probe begins or ends, in the
// Release that finds it due, by the clock Options.Now.
//
// # The baseline and the probes
//
// The limit comes from comparing the latency of recent requests with a baseline: the backend's
// latency when this limiter makes no queue. A probe measures it. While a probe runs the limit is
// pinned to MinLimit, and the RTTs of the requests that were admitted since it began with at most
// MinLimit in flight and succeeded are gathered (a Token records the in-flight count and the
// probe generation at its admission: the requests admitted before the probe, and the queue they
// stand in, are waited out, not sampled). Once it has ProbeSamples RTTs their median is the new
// baseline, the limit in force before the probe is restored (InitialLimit after the first probe)
// and the sample windows start afresh. The median is Envoy's default percentile: it ignores the
// stragglers of a few samples, and a lower one would sit below the mean RTT of an unqueued
// window, which is what the baseline is compared with, and so shrink the limit without a queue.
//
// A probe begins:
//
//   - at the start: a new Limiter is probing, its limit MinLimit;
//   - MinRTTInterval after the previous one ended, lengthened by a random jitter of up to 15%;
//   - when the limit has sat at its floor (below) with the short RTT beyond Tolerance times the
//     baseline for 5 windows in a row: shedding did not bring the latency back, so the backend
//     itself got slower. Envoy likewise probes after 5 windows at its minimum;
//   - when a window's short RTT is below half the baseline: the backend got faster (even with a
//     queue in it, a window's mean RTT is an upper bound of the backend's own latency).
//
// A probe that cannot gather ProbeSamples RTTs within 2*SampleWindow*ProbeSamples (5s with the
// defaults; for the first probe counted from its first release, not from New) ends with the
// median of what it has if that is at least 5 RTTs, and otherwise keeps the previous baseline
// and restores the limit all the same. The first probe has no baseline to keep: it lasts until
// it has 5 RTTs. The outcomes released during a probe feed only the probe: a failed request is
// not sampled and, unlike in a window, not counted as a drop.
//
// # Sample windows
//
// Between probes a window gathers, since it started, the RTTs of the successful requests
// released (failed ones are not sampled: their RTT says when the caller gave up, not how fast the
// backend is), the number of drops (requests released with ok=false: timeouts, resets), and the
// most requests in flight any of them saw when admitted. It closes once it has lasted
// SampleWindow and holds at least MinSamples outcomes (samples plus drops); a thinner window keeps
// gathering, which merges it into the next. Its short RTT is the mean of its samples: it costs no
// memory per sample, and at least MinSamples of them go into each.
//
// # The limit
//
// When a window closes:
//
//   - If the window saw a drop, the limit is multiplied by 0.9.
//   - Otherwise gradient = Tolerance*baseline/shortRTT and queue = sqrt(limit), at least 1. If
//     the gradient is at most 0.5 (the short RTT beyond twice the tolerance) the new limit
//     limit*0.5 + queue is taken whole: a queue that long is no noise of one window, and a limit
//     far above what the backend serves at once, such as an InitialLimit set too high, about
//     halves each window. Otherwise newLimit = limit*min(gradient, 1) + queue and
//     limit = limit*(1-Smoothing) + newLimit*Smoothing: while the short RTT stays within
//     Tolerance of the baseline the limit grows by Smoothing*sqrt(limit) a window; beyond it, it
//     shrinks by at most a fraction Smoothing/2 a window. If the window's most requests in flight
//     were fewer than half the limit the service is app-limited: the load, not the backend,
//     bounds the in-flight, and the limit does not grow (it may still shrink).
//   - The limit is clamped to [MinLimit, MaxLimit]; Limit reports its integer part.
//
// Under overload the limit settles where the queue allowance balances the gradient: the short
// RTT at about Tolerance/(1-1/sqrt(limit)) times the baseline. For a backend that serves C
// requests at once and queues the rest, that is a limit of about 1.5 to 2 C with the defaults,
// whatever the limit started from. The gradient cannot take the limit below its floor, the larger
// of MinLimit and 4 (where the smallest gradient and the queue allowance balance); drops can, down
// to MinLimit.
//
// # Known weaknesses
//
//   - A probe costs throughput: while it runs at most MinLimit requests are in flight and the
//     rest are refused. Under overload it lasts the time the requests admitted before it take to
//     finish, plus ProbeSamples/MinLimit RTTs: with the defaults and a 20ms backend about 0.2s
//     every 30s, under 1% of the time.
//   - MinLimit must be below what the backend serves at once, or the probes measure a queue and
//     the limit settles proportionally too high. Likewise the probes measure the backend under
//     the load of its other clients (other instances of this limiter included, which do not
//     coordinate their probes; the jitter only keeps them from probing in step): the baseline
//     holds whatever queue those make.
//   - Between probes the baseline is fixed. A backend that gets slower by more than Tolerance but
//     less than twice that (so that the gradient stays above 0.5) does not shed to the floor: the
//     limit settles where that gradient and the queue allowance balance, about
//     1/(1-Tolerance/ratio)^2, until the next periodic probe learns the new latency. A backend
//     that gets faster, by less than half, keeps a baseline too high and a limit proportionally
//     too high until then.
//   - The baseline is the median of ProbeSamples RTTs, with the precision that gives: for RTTs
//     spread uniformly by ±30%, about ±6% (one standard error) with the default 25, and the limit
//     moves in proportion from one probe to the next.
//   - The short RTT is a mean and the baseline a median: for a latency distribution skewed to
//     the right the ratio of the two, even without a queue, takes up part of Tolerance.
//   - Limit reports MinLimit during a probe, so a gauge of it dips at every probe.
//   - Without a timer a probe ends only in a Release: while the requests in flight hang, it
//     waits for them.
package adaptive
