package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"time"
)

// result is the whole run, as written to control-scale.json.
type result struct {
	Date      string `json:"date"`
	Cores     int    `json:"cores"`
	Proxies   int    `json:"proxies"`
	Services  int    `json:"services"`
	Workloads int    `json:"workloads"`
	Rounds    int    `json:"rounds"`
	Smoke     bool   `json:"smoke"`
	// NoFile is the open-file limit the benchmark and the control plane ran with.
	NoFile uint64 `json:"nofile"`
	// Connect is each proxy's time from the start of connecting to its first snapshot.
	Connect summary `json:"connect"`
	// RSSBeforeBytes is the control plane's VmRSS with the config and workloads but no proxy;
	// RSSConnectedBytes with every proxy connected.
	RSSBeforeBytes    int64   `json:"rss_before_bytes"`
	RSSConnectedBytes int64   `json:"rss_connected_bytes"`
	RSSPerProxyBytes  float64 `json:"rss_per_proxy_bytes"`
	// Propagation is, over every round, the time from just before the registry call to each
	// proxy's Apply of the snapshot reflecting the change.
	Propagation  summary       `json:"propagation"`
	RoundResults []roundResult `json:"rounds_detail"`
	// CPUPerPushPerProxyUs is the control plane's CPU time per round divided by the proxies.
	CPUPerPushPerProxyUs float64 `json:"cpu_per_push_per_proxy_us"`
	// InitialPushes counts the snapshots applied while connecting; TotalPushes every one.
	InitialPushes int64 `json:"initial_pushes"`
	TotalPushes   int64 `json:"total_pushes"`
	// GoalMet says whether 99% of the proxies had each change within 1 s.
	GoalMet bool `json:"goal_met"`
}

// roundResult is one registration change.
type roundResult struct {
	Round   int     `json:"round"`
	Service string  `json:"service"`
	Change  string  `json:"change"`
	Reached int     `json:"reached"`
	Latency summary `json:"latency"`
	// CPUms is the control plane's CPU time from the call until the settle after the last Apply.
	CPUms  float64 `json:"cpu_ms"`
	Pushes int64   `json:"pushes"`
}

// summary are the percentiles of a set of durations, in milliseconds. To99ms is the time by
// which 99% of the expected count (not of the observed ones) had arrived; -1 when fewer did.
type summary struct {
	Count  int     `json:"count"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	To99ms float64 `json:"to_99pct_ms"`
}

// summarize computes the summary of d out of want expected values.
func summarize(d []time.Duration, want int) summary {
	s := slices.Clone(d)
	slices.Sort(s)
	ms := func(v time.Duration) float64 { return math.Round(float64(v)/float64(time.Microsecond)) / 1000 }
	q := func(p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(0, min(i, len(s)-1))])
	}
	out := summary{Count: len(s), P50ms: q(0.5), P99ms: q(0.99), To99ms: -1}
	if len(s) > 0 {
		out.MaxMs = ms(s[len(s)-1])
	}
	if need := int(math.Ceil(0.99 * float64(want))); need > 0 && need <= len(s) {
		out.To99ms = ms(s[need-1])
	}
	return out
}

// runtimeCores is the number of CPUs the benchmark may use.
func runtimeCores() int { return runtime.NumCPU() }

// printTable writes the result as Markdown.
func printTable(w io.Writer, r *result) {
	fmt.Fprintf(w, "\n#### control plane at scale — %d proxies (%d sidecars, %d gateways), %d services, %d workloads, %d rounds, %d cores\n\n",
		r.Proxies, r.Proxies/2, r.Proxies-r.Proxies/2, r.Services, r.Workloads, r.Rounds, r.Cores)
	fmt.Fprintln(w, "| measure | p50 | p99 | max | to 99% of proxies |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(w, "| connect + first snapshot (ms) | %.1f | %.1f | %.1f | %.1f |\n", r.Connect.P50ms, r.Connect.P99ms, r.Connect.MaxMs, r.Connect.To99ms)
	fmt.Fprintf(w, "| registration change → applied, all rounds (ms) | %.1f | %.1f | %.1f | %.1f |\n", r.Propagation.P50ms, r.Propagation.P99ms, r.Propagation.MaxMs, r.Propagation.To99ms)
	for _, rr := range r.RoundResults {
		fmt.Fprintf(w, "| round %d: %s in %s, %d/%d reached (ms) | %.1f | %.1f | %.1f | %.1f |\n", rr.Round, rr.Change, rr.Service,
			rr.Reached, r.Proxies, rr.Latency.P50ms, rr.Latency.P99ms, rr.Latency.MaxMs, rr.Latency.To99ms)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| control plane | value |")
	fmt.Fprintln(w, "| --- | ---: |")
	fmt.Fprintf(w, "| RSS without proxies | %.1f MiB |\n", float64(r.RSSBeforeBytes)/(1<<20))
	fmt.Fprintf(w, "| RSS with %d proxies | %.1f MiB |\n", r.Proxies, float64(r.RSSConnectedBytes)/(1<<20))
	fmt.Fprintf(w, "| memory per connected proxy | %.1f KiB |\n", r.RSSPerProxyBytes/1024)
	fmt.Fprintf(w, "| CPU per push per proxy | %.1f µs |\n", r.CPUPerPushPerProxyUs)
	fmt.Fprintf(w, "| pushes applied (initial + rounds) | %d + %d |\n", r.InitialPushes, r.TotalPushes-r.InitialPushes)
	goal := "no"
	if r.GoalMet {
		goal = "yes"
	}
	fmt.Fprintf(w, "| 99%% of proxies within 1 s (goal) | %s |\n\n", goal)
}
