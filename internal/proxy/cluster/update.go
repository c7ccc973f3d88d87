package cluster

import (
	"errors"
	"fmt"

	"github.com/meshgate/meshgate/internal/config"
)

// ErrSettingsChanged is returned by UpdateEndpoints when the service differs from the cluster's in
// more than its endpoints: such a change needs a new Cluster.
var ErrSettingsChanged = errors.New("cluster: the service changed in more than its endpoints")

// UpdateEndpoints makes svc's endpoint list the cluster's, in place: svc must be the cluster's
// service changed at most in its endpoints (same SettingsFingerprint), else UpdateEndpoints
// returns an error wrapping ErrSettingsChanged and changes nothing.
//
// Endpoints are matched by address (the n-th endpoint with an address in svc takes over the n-th
// one with that address in the cluster). An endpoint that stays keeps its health, outlier state,
// in-flight count and whatever the engine pools under its address; its weight and position follow
// svc. An added endpoint starts healthy (or as unhealthy as another endpoint at the same address)
// and, with an active health check, is probed from now on like the first ones. A removed endpoint
// leaves rotation at once and is marked Removed; requests already sent to it finish normally. The
// load balancer is rebuilt over the new set and swapped in atomically, so concurrent Picks see
// either the old set or the new one. The list may become empty: Pick then fails with
// ErrNoHealthyEndpoint.
//
// It returns the endpoints whose address is new to the service and those whose address the
// service no longer has (the same lists Options.OnEndpointsChange receives). It must not be called
// from OnHealthChange or OnEndpointsChange. Calls are serialised.
func (c *Cluster) UpdateEndpoints(svc *config.Service) (added, removed []*Endpoint, err error) {
	if svc == nil {
		return nil, nil, errors.New("cluster: nil service")
	}
	if svc.Name != c.name {
		return nil, nil, fmt.Errorf("cluster %q: update for service %q: %w", c.name, svc.Name, ErrSettingsChanged)
	}
	if SettingsFingerprint(svc) != c.settings {
		return nil, nil, fmt.Errorf("cluster %q: %w", c.name, ErrSettingsChanged)
	}
	c.updateMu.Lock()
	defer c.updateMu.Unlock()

	c.buildMu.Lock()
	old := c.endpoints
	byAddr := make(map[string][]*Endpoint, len(old))
	for _, ep := range old {
		byAddr[ep.Address] = append(byAddr[ep.Address], ep)
	}
	oldAddrs := make(map[string]*Endpoint, len(old))
	for _, ep := range old {
		if oldAddrs[ep.Address] == nil {
			oldAddrs[ep.Address] = ep
		}
	}
	type saved struct {
		ep            *Endpoint
		weight, index int64
	}
	var kept []saved // the previous weight and index of each endpoint that stays, to undo
	next := make([]*Endpoint, len(svc.Endpoints))
	newAddrs := make(map[string]bool, len(svc.Endpoints))
	var fresh []*Endpoint // endpoints created by this update
	for i, e := range svc.Endpoints {
		newAddrs[e.Address] = true
		if q := byAddr[e.Address]; len(q) > 0 {
			ep := q[0]
			byAddr[e.Address] = q[1:]
			kept = append(kept, saved{ep, ep.weight.Load(), ep.index.Load()})
			ep.weight.Store(int64(max(e.Weight, 1)))
			ep.index.Store(int64(i))
			next[i] = ep
			continue
		}
		ep := newEndpoint(e.Address, e.Weight, i)
		if twin := oldAddrs[e.Address]; twin != nil {
			ep.unhealthy.Store(twin.unhealthy.Load())
		}
		if c.outlier != nil {
			// Before the endpoint is published: Report reads its counters lock-free.
			c.outlier.track(ep, oldAddrs[e.Address] == nil)
		}
		next[i] = ep
		fresh = append(fresh, ep)
	}
	c.endpoints = next
	if err := c.rebuild(); err != nil {
		for _, k := range kept {
			k.ep.weight.Store(k.weight)
			k.ep.index.Store(k.index)
		}
		c.endpoints = old
		if rerr := c.rebuild(); rerr != nil {
			c.log.Error("cannot rebuild load balancer; keeping the previous one", "error", rerr)
		}
		c.buildMu.Unlock()
		if c.outlier != nil {
			for _, ep := range fresh {
				if oldAddrs[ep.Address] == nil {
					c.outlier.forget(ep.Address)
				}
			}
		}
		return nil, nil, fmt.Errorf("cluster %q: %w", c.name, err)
	}
	for _, ep := range fresh {
		if oldAddrs[ep.Address] == nil {
			added = append(added, ep)
		}
	}
	for _, q := range byAddr {
		for _, ep := range q {
			ep.removed.Store(true)
			ep.index.Store(-1)
			if !newAddrs[ep.Address] {
				removed = append(removed, ep)
			}
		}
	}
	c.buildMu.Unlock()
	fp := Fingerprint(svc)
	c.fingerprint.Store(&fp)

	// Removed addresses stop reporting before anyone forgets them, and added ones start
	// reporting only after OnEndpointsChange announced them.
	if c.checker != nil && len(removed) > 0 {
		stay := make([]string, 0, len(next))
		for _, ep := range next {
			if oldAddrs[ep.Address] != nil {
				stay = append(stay, ep.Address)
			}
		}
		c.checker.Update(stay)
	}
	if c.outlier != nil {
		for _, ep := range removed {
			c.outlier.forget(ep.Address)
		}
	}
	if c.onEndpoints != nil && (len(added) > 0 || len(removed) > 0) {
		c.onEndpoints(c.name, added, removed)
	}
	if c.checker != nil {
		all := make([]string, len(next))
		for i, ep := range next {
			all[i] = ep.Address
		}
		c.checker.Update(all)
	}
	if len(added) > 0 || len(removed) > 0 {
		c.log.Info("endpoints updated", "added", len(added), "removed", len(removed), "endpoints", len(next))
	}
	return added, removed, nil
}
