package lb

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meshgate/meshgate/internal/config"
)

var policies = []string{
	config.LBRoundRobin,
	config.LBLeastRequest,
	config.LBRandom,
	config.LBRingHash,
	config.LBMaglev,
}

// targets returns n targets with the given weights (1 when weights is nil) and in-flight counters.
func targets(n int, weights ...int) []Target {
	ts := make([]Target, n)
	for i := range ts {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		ts[i] = Target{Key: fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250+1), Weight: w, Inflight: new(atomic.Int64)}
	}
	return ts
}

func mustNew(t testing.TB, policy string, ts []Target) Balancer {
	t.Helper()
	b, err := New(policy, ts)
	if err != nil {
		t.Fatalf("New(%q): %v", policy, err)
	}
	return b
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		desc    string
		policy  string
		targets []Target
		wantErr bool
	}{
		{desc: "no targets", policy: config.LBRoundRobin, wantErr: true},
		{desc: "unknown policy", policy: "fastest", targets: targets(2), wantErr: true},
		{desc: "least_request without counters", policy: config.LBLeastRequest, targets: []Target{{Key: "a"}, {Key: "b"}}, wantErr: true},
		{desc: "empty policy is round robin", policy: "", targets: targets(2)},
		{desc: "single target", policy: config.LBMaglev, targets: targets(1)},
		{desc: "zero and negative weights count as 1", policy: config.LBRandom, targets: targets(2, 0, -3)},
	}
	for _, p := range policies {
		tests = append(tests, struct {
			desc    string
			policy  string
			targets []Target
			wantErr bool
		}{desc: "valid " + p, policy: p, targets: targets(3, 1, 2, 3)})
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := New(tt.policy, tt.targets)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%q) error = %v, want error %v", tt.policy, err, tt.wantErr)
			}
		})
	}
}

func TestSingleTarget(t *testing.T) {
	for _, p := range policies {
		b := mustNew(t, p, targets(1, 7))
		for i := range 10 {
			if got := b.Pick(uint64(i), i%2 == 0); got != 0 {
				t.Fatalf("%s: Pick = %d, want 0", p, got)
			}
		}
	}
}

func TestRoundRobinSequence(t *testing.T) {
	tests := []struct {
		desc    string
		weights []int
		want    string // one period, targets named a, b, c, ...
	}{
		{desc: "equal weights", weights: []int{1, 1, 1}, want: "abc"},
		{desc: "equal non-unit weights", weights: []int{5, 5}, want: "ab"},
		{desc: "2:1 interleaves", weights: []int{2, 1}, want: "aba"},
		{desc: "GCD is divided out", weights: []int{4, 2}, want: "aba"},
		{desc: "nginx's 5:1:1 example", weights: []int{5, 1, 1}, want: "aabacaa"},
		{desc: "1:2:3", weights: []int{1, 2, 3}, want: "cbacbc"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			b := mustNew(t, config.LBRoundRobin, targets(len(tt.weights), tt.weights...))
			// Two periods: the sequence repeats exactly.
			var got []byte
			for range 2 * len(tt.want) {
				got = append(got, byte('a'+b.Pick(0, false)))
			}
			if want := tt.want + tt.want; string(got) != want {
				t.Fatalf("sequence = %s, want %s", got, want)
			}
		})
	}
}

func TestRoundRobinScheduleMatchesLiveAlgorithm(t *testing.T) {
	weights := []int{3, 7, 2, 9, 1}
	ts := targets(len(weights), weights...)
	scheduled := mustNew(t, config.LBRoundRobin, ts)
	if _, ok := scheduled.(*roundRobin); !ok {
		t.Fatalf("balancer is %T, want the precomputed schedule", scheduled)
	}
	live := newSmoothWRR(normalizedWeights(ts))
	for i := range 3 * 22 {
		if a, b := scheduled.Pick(0, false), live.Pick(0, false); a != b {
			t.Fatalf("pick %d: schedule %d, live %d", i, a, b)
		}
	}
}

func TestRoundRobinHugeWeightsFallBack(t *testing.T) {
	weights := []int{100000, 3, 1}
	b := mustNew(t, config.LBRoundRobin, targets(3, weights...))
	if _, ok := b.(*smoothWRR); !ok {
		t.Fatalf("balancer is %T, want the live fallback", b)
	}
	counts := make([]int, 3)
	for range 100004 {
		counts[b.Pick(0, false)]++
	}
	for i, w := range weights {
		if counts[i] != w {
			t.Errorf("target %d picked %d times in one period, want %d", i, counts[i], w)
		}
	}
}

func TestRoundRobinConcurrentPeriod(t *testing.T) {
	// However picks interleave across goroutines, every period hands out exactly the weights.
	weights := []int{5, 1, 3}
	b := mustNew(t, config.LBRoundRobin, targets(3, weights...))
	const workers, perWorker = 8, 9 * 500
	var counts [3]atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				counts[b.Pick(0, false)].Add(1)
			}
		})
	}
	wg.Wait()
	periods := int64(workers * perWorker / 9)
	for i, w := range weights {
		if got := counts[i].Load(); got != int64(w)*periods {
			t.Errorf("target %d picked %d times, want %d", i, got, int64(w)*periods)
		}
	}
}

// shares picks n times and returns each target's share of the picks.
func shares(b Balancer, targets, n int, hash func(i int) (uint64, bool)) []float64 {
	counts := make([]int, targets)
	for i := range n {
		h, ok := hash(i)
		counts[b.Pick(h, ok)]++
	}
	s := make([]float64, targets)
	for i, c := range counts {
		s[i] = float64(c) / float64(n)
	}
	return s
}

func noHash(int) (uint64, bool) { return 0, false }

func keyHash(seed uint64) func(int) (uint64, bool) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func(int) (uint64, bool) { return r.Uint64(), true }
}

// checkShares fails when a share differs from its weight's share by more than tol, relative.
func checkShares(t *testing.T, got []float64, weights []int, tol float64) {
	t.Helper()
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, w := range weights {
		want := float64(w) / float64(total)
		if math.Abs(got[i]-want) > tol*want {
			t.Errorf("target %d: share %.4f, want %.4f ± %.0f%%", i, got[i], want, tol*100)
		}
	}
}

func TestDistribution(t *testing.T) {
	tests := []struct {
		desc    string
		policy  string
		weights []int
		hash    func(int) (uint64, bool)
		tol     float64
	}{
		{desc: "random equal", policy: config.LBRandom, weights: []int{1, 1, 1, 1}, hash: noHash, tol: 0.05},
		{desc: "random weighted", policy: config.LBRandom, weights: []int{1, 2, 3, 4}, hash: noHash, tol: 0.05},
		{desc: "least_request idle follows weights", policy: config.LBLeastRequest, weights: []int{1, 3}, hash: noHash, tol: 0.05},
		{desc: "least_request idle equal", policy: config.LBLeastRequest, weights: []int{1, 1, 1}, hash: noHash, tol: 0.05},
		{desc: "ring_hash equal", policy: config.LBRingHash, weights: []int{1, 1, 1, 1, 1, 1, 1, 1}, hash: keyHash(1), tol: 0.08},
		{desc: "ring_hash weighted", policy: config.LBRingHash, weights: []int{1, 2, 1}, hash: keyHash(2), tol: 0.08},
		{desc: "ring_hash without a hash", policy: config.LBRingHash, weights: []int{1, 1, 1, 1}, hash: noHash, tol: 0.08},
		{desc: "maglev equal", policy: config.LBMaglev, weights: []int{1, 1, 1, 1, 1, 1, 1, 1}, hash: keyHash(3), tol: 0.05},
		{desc: "maglev weighted", policy: config.LBMaglev, weights: []int{1, 2, 1}, hash: keyHash(4), tol: 0.05},
		{desc: "maglev without a hash", policy: config.LBMaglev, weights: []int{1, 1, 1, 1}, hash: noHash, tol: 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			b := mustNew(t, tt.policy, targets(len(tt.weights), tt.weights...))
			checkShares(t, shares(b, len(tt.weights), 200000, tt.hash), tt.weights, tt.tol)
		})
	}
}

func TestLeastRequestPrefersFewerInflight(t *testing.T) {
	t.Run("two targets: the idle one always wins", func(t *testing.T) {
		ts := targets(2)
		ts[0].Inflight.Store(5)
		b := mustNew(t, config.LBLeastRequest, ts)
		for range 1000 {
			if got := b.Pick(0, false); got != 1 {
				t.Fatalf("Pick = %d, want the idle target 1", got)
			}
		}
	})
	t.Run("idle target wins whenever sampled", func(t *testing.T) {
		ts := targets(4)
		for i := range ts {
			ts[i].Inflight.Store(10)
		}
		ts[2].Inflight.Store(0)
		b := mustNew(t, config.LBLeastRequest, ts)
		// Two distinct candidates out of four include target 2 with probability 1/2.
		got := shares(b, 4, 100000, noHash)[2]
		if math.Abs(got-0.5) > 0.02 {
			t.Fatalf("idle target share %.3f, want 0.5", got)
		}
	})
	t.Run("the most loaded target never wins", func(t *testing.T) {
		// Even when its weight makes it the usual first candidate, the second candidate is
		// always another target, and that one is idle.
		ts := targets(3, 1, 20, 2)
		ts[1].Inflight.Store(100)
		b := mustNew(t, config.LBLeastRequest, ts)
		for range 10000 {
			if got := b.Pick(0, false); got == 1 {
				t.Fatal("the loaded target won")
			}
		}
	})
	t.Run("weighted second candidate is drawn without replacement", func(t *testing.T) {
		c := newWeightedChoice([]uint64{1, 2, 3, 4})
		for a := range 4 {
			counts := make([]int, 4)
			for range 40000 {
				counts[c.drawExcept(a)]++
			}
			if counts[a] != 0 {
				t.Fatalf("drawExcept(%d) returned %d", a, a)
			}
			rest := 10 - (a + 1)
			for i, n := range counts {
				if i == a {
					continue
				}
				want := float64(i+1) / float64(rest)
				if got := float64(n) / 40000; math.Abs(got-want) > 0.05*want+0.005 {
					t.Errorf("drawExcept(%d): index %d share %.3f, want %.3f", a, i, got, want)
				}
			}
		}
	})
}

func TestConsistentHashDeterministic(t *testing.T) {
	for _, p := range []string{config.LBRingHash, config.LBMaglev} {
		t.Run(p, func(t *testing.T) {
			ts := targets(7, 1, 2, 1, 3, 1, 1, 2)
			a := mustNew(t, p, ts)
			// A replica that lists the same endpoints in reverse order agrees.
			rev := make([]Target, len(ts))
			for i := range ts {
				rev[len(ts)-1-i] = ts[i]
			}
			b := mustNew(t, p, rev)
			h := keyHash(9)
			for range 10000 {
				k, _ := h(0)
				x, y := a.Pick(k, true), b.Pick(k, true)
				if ts[x].Key != rev[y].Key {
					t.Fatalf("hash %#x: %s vs %s", k, ts[x].Key, rev[y].Key)
				}
				if a.Pick(k, true) != x {
					t.Fatalf("hash %#x: repeated Pick disagrees", k)
				}
			}
		})
	}
}

// remap builds a balancer over before and one over after and reports the fraction of keys whose
// target (by key) changed, and the fraction that moved between two targets present in both sets.
func remap(t *testing.T, policy string, before, after []Target, keys int) (moved, needless float64) {
	t.Helper()
	a, b := mustNew(t, policy, before), mustNew(t, policy, after)
	inBefore, inAfter := map[string]bool{}, map[string]bool{}
	for _, x := range before {
		inBefore[x.Key] = true
	}
	for _, x := range after {
		inAfter[x.Key] = true
	}
	h := keyHash(42)
	var nMoved, nNeedless int
	for range keys {
		k, _ := h(0)
		from, to := before[a.Pick(k, true)].Key, after[b.Pick(k, true)].Key
		if from != to {
			nMoved++
			if inAfter[from] && inBefore[to] {
				nNeedless++
			}
		}
	}
	return float64(nMoved) / float64(keys), float64(nNeedless) / float64(keys)
}

func TestConsistentHashRemap(t *testing.T) {
	const n, keys = 10, 10000
	all := targets(n)
	without := append(append([]Target(nil), all[:3]...), all[4:]...)
	tests := []struct {
		desc        string
		policy      string
		before      []Target
		after       []Target
		maxNeedless float64
	}{
		{desc: "ring_hash remove one of 10", policy: config.LBRingHash, before: all, after: without, maxNeedless: 0},
		{desc: "ring_hash add one to 9", policy: config.LBRingHash, before: without, after: all, maxNeedless: 0},
		{desc: "maglev remove one of 10", policy: config.LBMaglev, before: all, after: without, maxNeedless: 0.03},
		{desc: "maglev add one to 9", policy: config.LBMaglev, before: without, after: all, maxNeedless: 0.03},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			moved, needless := remap(t, tt.policy, tt.before, tt.after, keys)
			t.Logf("moved %.2f%% of keys, %.2f%% needlessly", moved*100, needless*100)
			if moved > 1.5/n {
				t.Errorf("moved %.3f of keys, want about %.3f (at most %.3f)", moved, 1.0/n, 1.5/n)
			}
			if moved < 0.5/n {
				t.Errorf("moved %.3f of keys, want about %.3f: the changed target holds no keys?", moved, 1.0/n)
			}
			if needless > tt.maxNeedless {
				t.Errorf("%.3f of keys moved between unchanged targets, want at most %.3f", needless, tt.maxNeedless)
			}
		})
	}
}

func TestMaglevSizesArePrime(t *testing.T) {
	for i, m := range maglevSizes {
		if !new(big.Int).SetUint64(m).ProbablyPrime(20) {
			t.Errorf("table size %d is not prime", m)
		}
		if i > 0 && m <= maglevSizes[i-1] {
			t.Errorf("table sizes not increasing at %d", m)
		}
	}
	if m, _ := maglevSize(3); m != 65537 {
		t.Errorf("maglevSize(3) = %d, want 65537", m)
	}
	if m, _ := maglevSize(1000); m != 131071 {
		t.Errorf("maglevSize(1000) = %d, want 131071", m)
	}
}

func TestMaglevTableBalance(t *testing.T) {
	// Every slot is filled, and equal weights own nearly equal slot counts.
	b := mustNew(t, config.LBMaglev, targets(5)).(*maglev)
	counts := make([]int, 5)
	for _, x := range b.table {
		counts[x]++
	}
	for i, c := range counts {
		if want := len(b.table) / 5; c < want-1 || c > want+1 {
			t.Errorf("target %d owns %d slots, want %d", i, c, want)
		}
	}
}

func TestRingSizeCapped(t *testing.T) {
	b := mustNew(t, config.LBRingHash, targets(3, 1000, 1, 1)).(*ringHash)
	if len(b.hashes) > maxRingPoints+3 {
		t.Fatalf("ring has %d points, cap %d", len(b.hashes), maxRingPoints)
	}
	counts := make([]int, 3)
	for _, o := range b.owners {
		counts[o]++
	}
	if counts[1] < 1 || counts[2] < 1 {
		t.Fatalf("light targets own no points: %v", counts)
	}
}

func TestConcurrentPick(t *testing.T) {
	for _, p := range policies {
		t.Run(p, func(t *testing.T) {
			ts := targets(5, 1, 2, 3, 1, 1)
			b := mustNew(t, p, ts)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 2000 {
						k := b.Pick(uint64(g*2000+i)*0x9e3779b97f4a7c15, i%3 != 0)
						if k < 0 || k >= len(ts) {
							t.Errorf("Pick = %d, out of range", k)
							return
						}
						ts[k].Inflight.Add(1)
						ts[k].Inflight.Add(-1)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	for _, p := range policies {
		for _, weights := range [][]int{{1, 1, 1, 1}, {1, 2, 3, 4}} {
			b := mustNew(t, p, targets(len(weights), weights...))
			var i uint64
			if n := testing.AllocsPerRun(1000, func() { i++; b.Pick(i*0x9e3779b97f4a7c15, i%2 == 0) }); n != 0 {
				t.Errorf("%s %v: Pick allocates %v times", p, weights, n)
			}
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, p := range policies {
		for _, weighted := range []bool{false, true} {
			weights := []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}
			name := p + "/equal"
			if weighted {
				weights = []int{1, 2, 3, 4, 5, 1, 2, 3, 4, 5}
				name = p + "/weighted"
			}
			bal := mustNew(b, p, targets(10, weights...))
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				var h uint64
				for b.Loop() {
					h += 0x9e3779b97f4a7c15
					bal.Pick(h, true)
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					var h uint64
					for pb.Next() {
						h += 0x9e3779b97f4a7c15
						bal.Pick(h, true)
					}
				})
			})
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for _, p := range policies {
		ts := targets(10, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5)
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mustNew(b, p, ts)
			}
		})
	}
}

func TestRingLookupMatchesLinearScan(t *testing.T) {
	r := mustNew(t, config.LBRingHash, targets(5, 1, 2, 1, 3, 1)).(*ringHash)
	probe := []uint64{0, 1, ^uint64(0), r.hashes[0], r.hashes[0] - 1, r.hashes[len(r.hashes)-1],
		r.hashes[len(r.hashes)-1] + 1, r.hashes[100], r.hashes[100] + 1}
	h := keyHash(5)
	for range 3000 {
		k, _ := h(0)
		probe = append(probe, k)
	}
	for _, k := range probe {
		want := 0
		for want < len(r.hashes) && r.hashes[want] < k {
			want++
		}
		if want == len(r.hashes) {
			want = 0
		}
		if got := r.Pick(k, true); got != int(r.owners[want]) {
			t.Fatalf("hash %#x: Pick = %d, want %d", k, got, r.owners[want])
		}
	}
}
