package adaptive

import (
	"fmt"
	"math"
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

// ringTicks is the span of the sim's event rings: no event is scheduled further ahead.
const ringTicks = 1 << 12

// sim drives closed-loop clients against a backend through a limiter, in ticks of a fake clock:
// a client sends again think after its answer, or after being shed. Events are kept in rings
// indexed by the tick they fall on, so that a tick costs only its own events.
type sim struct {
	limiter *Limiter
	clock   *fakeClock
	backend *backend
	tick    time.Duration
	think   int64 // ticks

	now   int64               // ticks since the start
	sends [ringTicks][]int    // clients sending at a tick
	dones [ringTicks][]flight // requests finishing at a tick
}

// simStats sums up a run of a sim.
type simStats struct {
	limits       []int  // the limit at the end of every window
	probing      []bool // whether a probe was in progress at the end of every window
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

// probes returns the number of windows that ended during a probe.
func (s simStats) probes() int {
	n := 0
	for _, p := range s.probing {
		if p {
			n++
		}
	}
	return n
}

// limitRange returns the least and greatest limit from window from on, probes left out.
func (s simStats) limitRange(from int) (lo, hi int) {
	lo, hi = math.MaxInt, 0
	for i, v := range s.limits[from:] {
		if !s.probing[from+i] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// settle is the number of windows after a probe that the limit takes to adjust to the baseline
// the probe measured.
const settle = 40

// maxWander returns the greatest range of the limit over a stretch of windows between probes,
// the first settle windows after a probe left out.
func (s simStats) maxWander() int {
	wander, lo, hi, since := 0, math.MaxInt, 0, settle
	for i, v := range s.limits {
		if s.probing[i] {
			lo, hi, since = math.MaxInt, 0, 0
			continue
		}
		if since++; since <= settle {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
		wander = max(wander, hi-lo)
	}
	return wander
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
		st.probing = append(st.probing, s.limiter.probe.active)
	}
	return st
}

// at returns the index in the rings of the tick ahead ticks from now.
func (s *sim) at(ahead int64) int {
	if ahead >= ringTicks {
		panic(fmt.Sprintf("event %d ticks ahead, beyond the rings", ahead))
	}
	return int((s.now + ahead) % ringTicks)
}

// step completes the requests due at this tick, then lets the clients due send.
func (s *sim) step(st *simStats) {
	l := s.limiter
	i, again := s.at(0), s.at(s.think)
	for _, f := range s.dones[i] {
		s.backend.inFlight--
		l.Release(f.token, f.rtt, true)
		st.served++
		st.rttSum += f.rtt
		s.sends[again] = append(s.sends[again], f.client)
	}
	s.dones[i] = s.dones[i][:0]
	for _, c := range s.sends[i] {
		st.attempts++
		tok, ok := l.Acquire()
		if !ok {
			st.shed++
			s.sends[again] = append(s.sends[again], c)
			continue
		}
		st.maxOverLimit = max(st.maxOverLimit, l.InFlight()-l.Limit())
		rtt := s.backend.admit()
		done := s.at(max(1, int64((rtt+s.tick-1)/s.tick)))
		s.dones[done] = append(s.dones[done], flight{client: c, token: tok, rtt: rtt})
	}
	s.sends[i] = s.sends[i][:0]
}

// inBand fails t unless every limit from window from on, probes left out, is within
// [capacity/2, 3*capacity] and no admission took the in-flight beyond the limit.
func inBand(t *testing.T, st simStats, from, capacity int) {
	t.Helper()
	if st.maxOverLimit > 0 {
		t.Fatalf("in-flight exceeded the limit by %d after an admission", st.maxOverLimit)
	}
	for i, v := range st.limits[from:] {
		if st.probing[from+i] {
			continue
		}
		if 2*v < capacity || v > 3*capacity {
			t.Fatalf("window %d: limit %d outside [%d, %d]", from+i, v, capacity/2, 3*capacity)
		}
	}
}

// simBase is the simulated backend's latency without a queue.
const simBase = 20 * time.Millisecond

// overloaded returns a sim of ten clients per request the backend serves at once, with RTTs
// jittered by 30%, through a limiter starting at initial.
func overloaded(capacity, initial int) *sim {
	return newSim(Options{InitialLimit: initial},
		&backend{capacity: capacity, base: simBase, jitter: 0.3}, 10*capacity)
}

func TestSimulationConvergesToCapacity(t *testing.T) {
	// converge windows to reach the band, then measure windows: long enough for two probes.
	const converge, measure = 60, 700
	for _, capacity := range []int{20, 40, 100} {
		for _, start := range []int{1, 5, 10} {
			t.Run(fmt.Sprintf("C=%d/start=%dC", capacity, start), func(t *testing.T) {
				if capacity > 40 && (testing.Short() || raceEnabled) {
					t.Skip("long simulation")
				}
				s := overloaded(capacity, start*capacity)
				first := s.run(converge)
				st := s.run(measure)
				inBand(t, first, converge/2, capacity)
				inBand(t, st, 0, capacity)
				// Each probe measures the baseline afresh from ProbeSamples RTTs, and the limit
				// moves in proportion: only between probes must it hold steady.
				lo, hi := st.limitRange(0)
				if w := st.maxWander(); w > max(capacity/5, 4) {
					t.Errorf("limit wandered over %d between probes", w)
				}
				if n := st.probes(); n < 2 || n > 10 {
					t.Errorf("%d of %d windows ended in a probe, want 2 probes of a few windows",
						n, measure)
				}
				elapsed := time.Duration(measure) * s.limiter.opts.SampleWindow
				served := float64(st.served) / elapsed.Seconds()
				rate := float64(capacity) / simBase.Seconds()
				if served < 0.95*rate {
					t.Errorf("served %.0f/s, want near the backend's %.0f/s", served, rate)
				}
				t.Logf("capacity %d, %d clients, start %d: limit %d..%d (%.2f..%.2f x capacity) "+
					"from window %d; shed %.1f%% of %d attempts, served %.0f/s of %.0f/s, "+
					"mean RTT %v (base %v); %d windows in probes",
					capacity, 10*capacity, start*capacity, lo, hi,
					float64(lo)/float64(capacity), float64(hi)/float64(capacity), converge,
					100*st.shedShare(), st.attempts, served, rate,
					st.meanRTT().Round(time.Millisecond/10), simBase, st.probes())
			})
		}
	}
}

func TestSimulationSlowerBackend(t *testing.T) {
	const capacity = 40
	s := overloaded(capacity, capacity)
	s.run(500)
	s.backend.base = 3 * simBase
	st := s.run(1000)
	inBand(t, st, 200, capacity)
	got := time.Duration(s.limiter.gradient.baseline)
	if got < 25*simBase/10 || got > 35*simBase/10 {
		t.Errorf("baseline %v after the backend got 3x slower, want about %v", got, 3*simBase)
	}
	lo, hi := st.limitRange(200)
	t.Logf("backend 3x slower: limit %d..%d after 200 windows; baseline %v",
		lo, hi, got.Round(time.Millisecond))
}

func TestSimulationRecoversAfterSpike(t *testing.T) {
	const capacity = 40
	s := overloaded(capacity, capacity)
	s.run(500)
	for _, spike := range []int{20, 150} {
		s.backend.base = 5 * simBase
		s.run(spike)
		s.backend.base = simBase
		st := s.run(500)
		inBand(t, st, 200, capacity)
		lo, hi := st.limitRange(200)
		t.Logf("after a %d-window spike: limit %d..%d, baseline %v", spike, lo, hi,
			time.Duration(s.limiter.gradient.baseline).Round(time.Millisecond))
	}
}
