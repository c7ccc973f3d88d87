package cluster

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshgate/meshgate/internal/config"
)

// outlier is a cluster's outlier detector, as Envoy's: it ejects an endpoint at once when it
// reaches Consecutive5xx, ConsecutiveGatewayErrors or ConsecutiveConnectFailures failures in a
// row, and at every review
// (each Interval) ejects the endpoints whose success rate over the interval fell below the mean
// of their peers' minus StdevFactor standard deviations. An ejection lasts BaseEjectionTime times
// the endpoint's ejection multiplier (capped at MaxEjectionTime); the multiplier grows by one at
// every ejection and shrinks by one at every review that finds the endpoint back for a whole
// interval. At most MaxEjectionPercent of the endpoints are ejected at once, but one always may be,
// except that the default detector (a service without outlierDetection) never ejects the last
// usable endpoint.
type outlier struct {
	consecutive5xx int64 // 0: off
	consecutiveGW  int64 // 0: off
	consecutiveCF  int64 // connect failures; 0: off
	keepLast       bool  // never eject the last usable endpoint (the default detector's rule)
	successRate    *config.SuccessRateOutlier
	interval       time.Duration
	base, maxTime  time.Duration
	maxPercent     int

	service   string
	metrics   *Metrics              // nil without metrics
	ejections [4]prometheus.Counter // by ejectReasons index; nil without metrics
}

// ejectReasons indexes outlier.ejections.
var ejectReasons = [4]string{EjectConsecutive5xx, EjectConsecutiveGatewayErrors, EjectSuccessRate, EjectConnectFailures}

const (
	reason5xx = iota
	reasonGateway
	reasonSuccessRate
	reasonConnect
)

// hostStats is what the detector knows about one endpoint; it lives as long as the endpoint, so an
// endpoint update keeps it for the endpoints that stay. The counters are written on the request
// path; the rest is guarded by the cluster's buildMu.
type hostStats struct {
	consec5xx atomic.Int64
	consecGW  atomic.Int64
	consecCF  atomic.Int64 // connect failures in a row
	total     atomic.Int64 // attempts this interval (counted only with the success-rate rule)
	failed    atomic.Int64 // failed attempts this interval
	_         [cacheLine - 40]byte

	multiplier  int       // the ejection multiplier, Envoy's "eject time backoff"
	ejectedAt   time.Time // when the current ejection started
	unejectedAt time.Time // when the last ejection ended; zero before the first
}

// newOutlier returns the detector od (with its defaults applied) configures for the endpoints.
// keepLast keeps the last usable endpoint from ejection.
func newOutlier(service string, od *config.OutlierDetection, keepLast bool, eps []*Endpoint, m *Metrics) *outlier {
	o := &outlier{
		consecutive5xx: int64(*od.Consecutive5xx),
		consecutiveGW:  int64(max(od.ConsecutiveGatewayErrors, 0)),
		consecutiveCF:  int64(max(*od.ConsecutiveConnectFailures, 0)),
		interval:       od.Interval,
		base:           od.BaseEjectionTime,
		maxTime:        od.MaxEjectionTime,
		maxPercent:     od.MaxEjectionPercent,
		successRate:    od.SuccessRate,
		keepLast:       keepLast,
		service:        service,
		metrics:        m,
	}
	if m != nil {
		for i, r := range ejectReasons {
			o.ejections[i] = m.Ejections.WithLabelValues(service, r)
		}
	}
	for _, ep := range eps {
		o.track(ep, true)
	}
	return o
}

// track gives a new endpoint its counters and its ejection gauge, set to 0 when the address is
// new to the service (fresh).
func (o *outlier) track(ep *Endpoint, fresh bool) {
	ep.stats = new(hostStats)
	if o.metrics != nil {
		ep.ejectedSeen = o.metrics.Ejected.WithLabelValues(o.service, ep.Address)
		if fresh {
			ep.ejectedSeen.Set(0)
		}
	}
}

// forget deletes the ejection gauge of an address the service no longer has.
func (o *outlier) forget(addr string) {
	if o.metrics != nil {
		o.metrics.Ejected.DeleteLabelValues(o.service, addr)
	}
}

// ejectionTime returns how long an ejection with multiplier n lasts.
func (o *outlier) ejectionTime(n int) time.Duration {
	return min(o.base*time.Duration(n), max(o.maxTime, o.base))
}

// Report records the outcome of one attempt on ep, an endpoint of c: status is the upstream's
// answer, and localFailure reports that there was none because the connection failed, was reset
// or timed out. A 5xx answer or a local failure is a failure, any other answer a success; an
// attempt with status 0 and no local failure (it ended for a reason that says nothing about the
// endpoint, such as the client going away) is not counted. Report may eject ep at once. It does
// nothing when the service has no outlier detection, and does not allocate.
func (c *Cluster) Report(ep *Endpoint, status int, localFailure bool) {
	o := c.outlier
	if o == nil || ep == nil || (status == 0 && !localFailure) {
		return
	}
	h := ep.stats
	if h == nil {
		return
	}
	failed := localFailure || status >= 500
	if o.successRate != nil {
		h.total.Add(1)
		if failed {
			h.failed.Add(1)
		}
	}
	if !failed {
		if h.consec5xx.Load() != 0 {
			h.consec5xx.Store(0)
		}
		if h.consecGW.Load() != 0 {
			h.consecGW.Store(0)
		}
		return
	}
	if localFailure || status == 502 || status == 503 || status == 504 {
		if o.consecutiveGW > 0 && h.consecGW.Add(1) == o.consecutiveGW {
			h.consecGW.Store(0)
			c.eject(ep, reasonGateway)
		}
	} else if h.consecGW.Load() != 0 {
		h.consecGW.Store(0)
	}
	if o.consecutive5xx > 0 && h.consec5xx.Add(1) == o.consecutive5xx {
		h.consec5xx.Store(0)
		c.eject(ep, reason5xx)
	}
}

// ReportConnect records whether an attempt on ep, an endpoint of c, could connect to it: failed
// is true when the connection was refused, unreachable or timed out before it was made, and false
// when the attempt had a connection to the endpoint (whatever came of the exchange). It counts
// towards ConsecutiveConnectFailures and may eject ep at once. Report the attempt's outcome with
// Report as well. It does not allocate.
func (c *Cluster) ReportConnect(ep *Endpoint, failed bool) {
	o := c.outlier
	if o == nil || ep == nil || o.consecutiveCF == 0 {
		return
	}
	h := ep.stats
	if h == nil {
		return
	}
	if !failed {
		if h.consecCF.Load() != 0 {
			h.consecCF.Store(0)
		}
		return
	}
	if h.consecCF.Add(1) >= o.consecutiveCF {
		// >= rather than ==: an endpoint that could not be ejected (too many are out already)
		// is tried again at its next failure.
		if c.eject(ep, reasonConnect) {
			h.consecCF.Store(0)
		}
	}
}

// eject takes ep out of load balancing for its ejection time, unless it is out already or
// MaxEjectionPercent of the endpoints are. It reports whether it did.
func (c *Cluster) eject(ep *Endpoint, reason int) bool {
	o := c.outlier
	c.buildMu.Lock()
	if ep.ejected.Load() || ep.removed.Load() {
		c.buildMu.Unlock()
		return false
	}
	out := 0
	for _, e := range c.endpoints {
		if e.ejected.Load() {
			out++
		}
	}
	if out > 0 && 100*(out+1) > o.maxPercent*len(c.endpoints) {
		c.buildMu.Unlock()
		c.log.Debug("outlier not ejected: too many endpoints are ejected already",
			"endpoint", ep.Address, "rule", ejectReasons[reason], "ejected", out, "max_ejection_percent", o.maxPercent)
		return false
	}
	if o.keepLast && c.lastUsable(ep) {
		c.buildMu.Unlock()
		c.log.Debug("outlier not ejected: it is the last usable endpoint", "endpoint", ep.Address, "rule", ejectReasons[reason])
		return false
	}
	h := ep.stats
	if o.base*time.Duration(h.multiplier) < o.maxTime+o.base {
		h.multiplier++
	}
	h.ejectedAt = c.now()
	d := o.ejectionTime(h.multiplier)
	ep.ejected.Store(true)
	err := c.rebuild()
	if o.ejections[reason] != nil {
		// Under buildMu, so that an endpoint update that removes ep deletes the gauge after this.
		o.ejections[reason].Inc()
		ep.ejectedSeen.Set(1)
	}
	c.buildMu.Unlock()
	if err != nil {
		c.log.Error("cannot rebuild load balancer; keeping the previous one", "error", err)
	}
	c.log.Warn("outlier ejected", "endpoint", ep.Address, "rule", ejectReasons[reason], "for", d, "ejections", h.multiplier)
	return true
}

// lastUsable reports whether ep is the only usable endpoint (healthy and not ejected) of c. The
// caller holds buildMu.
func (c *Cluster) lastUsable(ep *Endpoint) bool {
	for _, e := range c.endpoints {
		if e != ep && e.Healthy() && !e.Ejected() {
			return false
		}
	}
	return true
}

// review returns the endpoints whose ejection time is up, decays the multipliers of the
// endpoints back for a whole interval, and applies the success-rate rule to the counts of the
// interval that ends. It runs every Interval.
func (c *Cluster) review(now time.Time) {
	o := c.outlier
	var back []*Endpoint
	c.buildMu.Lock()
	for _, ep := range c.endpoints {
		h := ep.stats
		switch {
		case ep.ejected.Load():
			if now.Sub(h.ejectedAt) >= o.ejectionTime(h.multiplier) {
				ep.ejected.Store(false)
				h.unejectedAt = now
				h.consec5xx.Store(0)
				h.consecGW.Store(0)
				h.consecCF.Store(0)
				if ep.ejectedSeen != nil {
					ep.ejectedSeen.Set(0)
				}
				back = append(back, ep)
			}
		case h.multiplier > 0 && !h.unejectedAt.IsZero() && now.Sub(h.unejectedAt) >= o.interval:
			h.multiplier--
		}
	}
	var err error
	if len(back) > 0 {
		err = c.rebuild()
	}
	c.buildMu.Unlock()
	if err != nil {
		c.log.Error("cannot rebuild load balancer; keeping the previous one", "error", err)
	}
	for _, ep := range back {
		c.log.Info("outlier ejection ended", "endpoint", ep.Address)
	}
	if o.successRate != nil {
		c.reviewSuccessRate()
	}
}

// reviewSuccessRate applies the success-rate rule to the interval's counts and starts the next
// interval.
func (c *Cluster) reviewSuccessRate() {
	o := c.outlier
	sr := o.successRate
	c.buildMu.Lock()
	eps := c.endpoints
	c.buildMu.Unlock()
	rates := make([]float64, 0, len(eps))
	judged := make([]*Endpoint, 0, len(eps))
	for _, ep := range eps {
		h := ep.stats
		total, failed := h.total.Swap(0), h.failed.Swap(0)
		if ep.ejected.Load() || total < int64(sr.RequestVolume) {
			continue
		}
		rates = append(rates, 100*float64(total-failed)/float64(total))
		judged = append(judged, ep)
	}
	if len(rates) < sr.MinimumHosts {
		return
	}
	threshold := successRateThreshold(rates, sr.StdevFactor)
	for i, ep := range judged {
		if rates[i] < threshold {
			c.eject(ep, reasonSuccessRate)
		}
	}
}

// successRateThreshold returns the success rate below which an endpoint is an outlier: the mean
// of rates minus factor (population) standard deviations.
func successRateThreshold(rates []float64, factor float64) float64 {
	var sum float64
	for _, r := range rates {
		sum += r
	}
	mean := sum / float64(len(rates))
	var variance float64
	for _, r := range rates {
		variance += (r - mean) * (r - mean)
	}
	variance /= float64(len(rates))
	return mean - factor*math.Sqrt(variance)
}

// runOutlier reviews ejections every interval until ctx is cancelled or Close is called.
func (c *Cluster) runOutlier(ctx context.Context) {
	defer c.wg.Done()
	tick := time.NewTicker(c.outlier.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.stop:
			return
		case <-tick.C:
			c.review(c.now())
		}
	}
}
