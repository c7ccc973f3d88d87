package adaptive

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// backend models a service that serves capacity requests at once in base time and queues the
// rest: with more in flight, every request takes base*inFlight/capacity.
type backend struct {
	capacity int
	base     time.Duration
	jitter   float64 // each RTT is scaled by a uniform factor in [1-jitter, 1+jitter]
	rng      *rand.Rand
	inFlight int
}

// admit takes one request and returns how long it will take.
func (b *backend) admit() time.Duration {
	b.inFlight++
	rtt := float64(b.base) * float64(max(b.inFlight, b.capacity)) / float64(b.capacity)
	if b.jitter > 0 {
		if b.rng == nil {
			b.rng = rand.New(rand.NewPCG(1, 2))
		}
		rtt *= 1 + b.jitter*(2*b.rng.Float64()-1)
	}
	return time.Duration(rtt)
}

// flight is a request the backend is serving for a client.
type flight struct {
	client int
	token  Token
	rtt    time.Duration
}

// sim drives closed-loop clients against a backend through a limiter, in ticks of a fake clock:
// a client sends again think after its answer, or after being shed. Events are kept by the tick
// they fall on, so that a tick costs only its own events.
type sim struct {
	limiter *Limiter
	clock   *fakeClock
	backend *backend
	tick    time.Duration
	think   int64 // ticks

	now   int64              // ticks since the start
	sends map[int64][]int    // clients sending at a tick
	dones map[int64][]flight // requests finishing at a tick
}

// simStats sums up a run of a sim.
type simStats struct {
	limits       []int // the limit at the end of every window
	attempts     int
	shed         int
	served       int
	rttSum       time.Duration
	maxOverLimit int // the most requests in flight beyond the limit right after an admission
}

// shedShare returns the share of the attempts that were shed.
func (s simStats) shedShare() float64 { return float64(s.shed) / float64(s.attempts) }

// meanRTT returns the mean RTT of the requests served.
func (s simStats) meanRTT() time.Duration { return s.rttSum / time.Duration(max(s.served, 1)) }

// limitRange returns the least and greatest limit from window from on.
func (s simStats) limitRange(from int) (lo, hi int) {
	lo, hi = s.limits[from], s.limits[from]
	for _, v := range s.limits[from:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

func newSim(o Options, b *backend, clients int) *sim {
	clock := newFakeClock()
	o.Now = clock.Now
	s := &sim{
		limiter: New(o),
		clock:   clock,
		backend: b,
		tick:    time.Millisecond,
		think:   10,
		sends:   map[int64][]int{},
		dones:   map[int64][]flight{},
	}
	for c := range clients {
		s.sends[0] = append(s.sends[0], c)
	}
	return s
}

// run simulates windows sample windows.
func (s *sim) run(windows int) simStats {
	var st simStats
	perWindow := int64(s.limiter.opts.SampleWindow / s.tick)
	for range windows {
		for range perWindow {
			s.step(&st)
			s.now++
			s.clock.Advance(s.tick)
		}
		st.limits = append(st.limits, s.limiter.Limit())
	}
	return st
}

// step completes the requests due at this tick, then lets the clients due send.
func (s *sim) step(st *simStats) {
	l := s.limiter
	for _, f := range s.dones[s.now] {
		s.backend.inFlight--
		l.Release(f.token, f.rtt, true)
		st.served++
		st.rttSum += f.rtt
		s.sends[s.now+s.think] = append(s.sends[s.now+s.think], f.client)
	}
	delete(s.dones, s.now)
	for _, c := range s.sends[s.now] {
		st.attempts++
		tok, ok := l.Acquire()
		if !ok {
			st.shed++
			s.sends[s.now+s.think] = append(s.sends[s.now+s.think], c)
			continue
		}
		st.maxOverLimit = max(st.maxOverLimit, l.InFlight()-l.Limit())
		rtt := s.backend.admit()
		done := s.now + max(1, int64((rtt+s.tick-1)/s.tick))
		s.dones[done] = append(s.dones[done], flight{client: c, token: tok, rtt: rtt})
	}
	delete(s.sends, s.now)
}

// inBand fails t unless every limit from window from on is within [capacity/2, 3*capacity] and
// no admission took the in-flight beyond the limit.
func inBand(t *testing.T, st simStats, from, capacity int) {
	t.Helper()
	if st.maxOverLimit > 0 {
		t.Fatalf("in-flight exceeded the limit by %d after an admission", st.maxOverLimit)
	}
	for i, v := range st.limits[from:] {
		if 2*v < capacity || v > 3*capacity {
			t.Fatalf("window %d: limit %d outside [%d, %d]", from+i, v, capacity/2, 3*capacity)
		}
	}
}

// simBase is the simulated backend's latency without a queue.
const simBase = 20 * time.Millisecond

// overloaded returns a sim of ten clients per request the backend serves at once, with RTTs
// jittered by 30%.
func overloaded(capacity int) *sim {
	return newSim(Options{}, &backend{capacity: capacity, base: simBase, jitter: 0.3}, 10*capacity)
}

func TestSimulationConvergesToCapacity(t *testing.T) {
	const windows = 2000
	for _, capacity := range []int{20, 40, 100} {
		t.Run(fmt.Sprint(capacity), func(t *testing.T) {
			if capacity > 40 && testing.Short() {
				t.Skip("long simulation")
			}
			s := overloaded(capacity)
			st := s.run(windows)
			inBand(t, st, 100, capacity)
			lo, hi := st.limitRange(100)
			if hi-lo > max(capacity/5, 4) {
				t.Errorf("limit wandered over %d..%d after converging", lo, hi)
			}
			elapsed := time.Duration(windows) * s.limiter.opts.SampleWindow
			served := float64(st.served) / elapsed.Seconds()
			rate := float64(capacity) / simBase.Seconds()
			if served < 0.95*rate {
				t.Errorf("served %.0f/s, want near the backend's %.0f/s", served, rate)
			}
			t.Logf("capacity %d, %d clients, %d windows: limit %d..%d (%.2f..%.2f x capacity), "+
				"shed %.1f%% of %d attempts, served %.0f/s of %.0f/s, mean RTT %v (base %v)",
				capacity, 10*capacity, windows, lo, hi,
				float64(lo)/float64(capacity), float64(hi)/float64(capacity),
				100*st.shedShare(), st.attempts, served, rate,
				st.meanRTT().Round(time.Millisecond/10), simBase)
		})
	}
}

func TestSimulationSlowerBackend(t *testing.T) {
	const capacity = 40
	s := overloaded(capacity)
	s.run(500)
	s.backend.base = 3 * simBase
	st := s.run(1000)
	inBand(t, st, 300, capacity)
	lo, hi := st.limitRange(300)
	t.Logf("backend 3x slower: limit %d..%d after 300 windows; long RTT %v",
		lo, hi, time.Duration(s.limiter.gradient.long.rtt).Round(time.Millisecond))
}

func TestSimulationRecoversAfterSpike(t *testing.T) {
	const capacity = 40
	s := overloaded(capacity)
	s.run(500)
	for _, spike := range []int{20, 150} {
		s.backend.base = 5 * simBase
		s.run(spike)
		s.backend.base = simBase
		st := s.run(500)
		inBand(t, st, 200, capacity)
		lo, hi := st.limitRange(200)
		t.Logf("after a %d-window spike: limit %d..%d", spike, lo, hi)
	}
}
