// Package lb holds meshgate's load-balancing policies.
//
// A Balancer is built once over a fixed list of targets and is immutable afterwards: when the set of
// usable endpoints changes (a health transition, a config reload) the owner builds a new Balancer and
// swaps it in. Pick is safe for concurrent use, does not allocate, and takes no lock (the one
// exception is round robin over weights too large to precompute, see round_robin below).
//
// Balancers work on indexes into the target list rather than on endpoint values, so this package
// does not depend on the cluster package that owns the endpoints.
//
// Policies, by their config names:
//
//   - round_robin: nginx's smooth weighted round robin; deterministic, weights 5:1:1 give
//     a a b a c a a.
//   - least_request: power of two choices; two distinct candidates are sampled in proportion to
//     weight and the one with fewer requests in flight wins.
//   - random: weighted random.
//   - ring_hash: Ketama-style consistent hashing on a ring of XXH64 points.
//   - maglev: consistent hashing with Maglev's lookup table.
//
// The consistent-hashing policies (ring_hash, maglev) map a request hash to a target; removing one
// of N targets moves only about 1/N of the keys. Without a hash they pick at random in proportion to
// weight.
package lb

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/meshgate/meshgate/internal/config"
)

// MaxWeight is the largest weight a target can carry; larger weights are treated as MaxWeight so
// that the policies' integer arithmetic cannot overflow.
const MaxWeight = 1 << 31

// ErrNoTargets is returned by New when the target list is empty.
var ErrNoTargets = errors.New("lb: no targets")

// Target is one endpoint as a balancer sees it.
type Target struct {
	// Key identifies the target for consistent hashing: its place on the ring and in the Maglev
	// table derive from Key alone, so every gateway replica maps a request hash to the same target.
	// Use the endpoint address.
	Key string
	// Weight is the target's share of traffic relative to the other targets. Weights below 1 count
	// as 1; weights above MaxWeight count as MaxWeight.
	Weight int
	// Inflight is the target's count of requests in flight, read by least_request. Required for
	// least_request, ignored by the other policies.
	Inflight *atomic.Int64
}

// Balancer chooses a target for each request.
type Balancer interface {
	// Pick returns the index, in the target list the balancer was built with, of the target that
	// should serve the request. hash is the request's hash key and hasHash reports whether it has
	// one; only the consistent-hashing policies read them. Pick is safe for concurrent use and does
	// not allocate.
	Pick(hash uint64, hasHash bool) int
}

// New builds a balancer for policy over targets. policy is one of the config.LB* names; the empty
// string means round_robin. The targets slice is not retained, but the Inflight counters are.
func New(policy string, targets []Target) (Balancer, error) {
	if len(targets) == 0 {
		return nil, ErrNoTargets
	}
	switch policy {
	case "", config.LBRoundRobin, config.LBRandom, config.LBRingHash, config.LBMaglev:
	case config.LBLeastRequest:
		for i := range targets {
			if targets[i].Inflight == nil {
				return nil, fmt.Errorf("lb: least_request: target %d (%q) has no in-flight counter", i, targets[i].Key)
			}
		}
	default:
		return nil, fmt.Errorf("lb: unknown policy %q", policy)
	}
	if len(targets) == 1 {
		return single{}, nil
	}
	w := normalizedWeights(targets)
	switch policy {
	case config.LBLeastRequest:
		return newLeastRequest(targets, w), nil
	case config.LBRandom:
		return newRandom(w), nil
	case config.LBRingHash:
		return newRingHash(targets, w), nil
	case config.LBMaglev:
		return newMaglev(targets, w)
	default:
		return newRoundRobin(w), nil
	}
}

// single is the balancer of a one-target list, whatever the policy.
type single struct{}

// Pick implements Balancer.
func (single) Pick(uint64, bool) int { return 0 }

var (
	_ Balancer = single{}
	_ Balancer = (*roundRobin)(nil)
	_ Balancer = (*smoothWRR)(nil)
	_ Balancer = (*leastRequest)(nil)
	_ Balancer = (*random)(nil)
	_ Balancer = (*ringHash)(nil)
	_ Balancer = (*maglev)(nil)
)
