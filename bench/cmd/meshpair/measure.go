package main

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
)

// The two paths and the two kinds of run.
const (
	pathDirect = "direct"
	pathMesh   = "mesh"
	kindFixed  = "fixed-rate"
	kindClosed = "closed-loop"
)

// runResult is one measured run of one path.
type runResult struct {
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Round int    `json:"round"` // 0: warm-up
	// Requests completed; Errors counts failed requests, non-2xx responses and (for the fixed
	// rate) requests not completed.
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	WallS      float64 `json:"wall_s"`
	RPS        float64 `json:"rps"`
	// Latency from the scheduled send time (fixed rate only), microseconds.
	P50us  float64 `json:"p50_us,omitempty"`
	P90us  float64 `json:"p90_us,omitempty"`
	P99us  float64 `json:"p99_us,omitempty"`
	P999us float64 `json:"p999_us,omitempty"`
	MaxUs  float64 `json:"max_us,omitempty"`
	// CPU time (utime+stime over all threads) per completed request, microseconds.
	ClientCPUus float64 `json:"client_sidecar_cpu_us_per_req"`
	ServerCPUus float64 `json:"server_sidecar_cpu_us_per_req"`
	OriginCPUus float64 `json:"origin_cpu_us_per_req"`
	// SidecarCoreBusy is the fraction of the run the sidecars' core spent running any task.
	SidecarCoreBusy float64 `json:"sidecar_core_busy"`
	// Peak VmRSS of each sidecar during the run, sampled every 50 ms, KiB.
	ClientPeakRSS int64 `json:"client_sidecar_peak_rss_kib"`
	ServerPeakRSS int64 `json:"server_sidecar_peak_rss_kib"`
}

// loadgenOut is the part of bench/cmd/loadgen's JSON the benchmark reads.
type loadgenOut struct {
	Scheduled int64   `json:"scheduled"`
	Completed int64   `json:"completed"`
	Non2xx    int64   `json:"non_2xx"`
	Errors    int64   `json:"errors"`
	Achieved  float64 `json:"achieved_rate"`
	P50us     float64 `json:"p50_us"`
	P90us     float64 `json:"p90_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
	FirstErr  string  `json:"first_error"`
}

// measure runs one load of kind against path and accounts the processes' CPU and memory.
func measure(ctx context.Context, o *options, t *topology, kind, path string, round int, dur time.Duration) (runResult, error) {
	r := runResult{Kind: kind, Path: path, Round: round}
	target := "http://" + t.originAddr + "/"
	if path == pathMesh {
		target = "http://" + t.upstreamAddr + "/"
	}
	var argv []string
	switch kind {
	case kindFixed:
		argv = procs.Pin(o.loadCPU, o.nice, o.loadgen, "-url", target, "-rate", strconv.Itoa(o.rate),
			"-c", strconv.Itoa(o.conns), "-d", dur.String(), "-timeout", "2s")
	case kindClosed:
		secs := max(1, int(dur.Round(time.Second)/time.Second))
		argv = procs.Pin(o.loadCPU, o.nice, "wrk", "-t1", "-c"+strconv.Itoa(o.wrkConns), "-d"+strconv.Itoa(secs)+"s", "--timeout", "2s", target)
	}
	originPIDs := procs.Tree(t.origin.PID())
	pids := [][]int{{t.client.PID()}, {t.server.PID()}, originPIDs}
	before := make([]int64, len(pids))
	for i, p := range pids {
		v, err := procs.CPUTicks(p)
		if err != nil {
			return r, err
		}
		before[i] = v
	}
	core0stat, err := procs.ReadCoreStat(o.sidecarCPU)
	if err != nil {
		return r, err
	}
	core0 := core0stat.BusyTasks()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		peakRSS(stop, t.client.PID(), t.server.PID(), &r.ClientPeakRSS, &r.ServerPeakRSS)
	}()
	start := time.Now()
	stdout, stderr, runErr := procs.RunTool(ctx, argv, []string{"GOMAXPROCS=1"}, dur+30*time.Second)
	r.WallS = time.Since(start).Seconds()
	close(stop)
	wg.Wait()
	after := make([]int64, len(pids))
	for i, p := range pids {
		v, err := procs.CPUTicks(p)
		if err != nil {
			return r, err
		}
		after[i] = v
	}
	core1stat, err := procs.ReadCoreStat(o.sidecarCPU)
	if err != nil {
		return r, err
	}
	core1 := core1stat.BusyTasks()

	switch kind {
	case kindFixed:
		var lg loadgenOut
		if err := json.Unmarshal([]byte(stdout), &lg); err != nil {
			return r, fmt.Errorf("meshpair: loadgen on %s: %v: %s", path, runErr, strings.TrimSpace(stderr+stdout))
		}
		r.Requests, r.Errors, r.RPS = lg.Completed, lg.Errors+lg.Non2xx, lg.Achieved
		r.P50us, r.P90us, r.P99us, r.P999us, r.MaxUs = lg.P50us, lg.P90us, lg.P99us, lg.P999us, lg.MaxUs
		r.FirstError = lg.FirstErr
		// loadgen exits 1 when it counted errors; that is in the result already.
		if float64(lg.Completed) < 0.99*float64(lg.Scheduled) {
			r.Errors += lg.Scheduled - lg.Completed - lg.Errors
			if r.FirstError == "" {
				r.FirstError = fmt.Sprintf("rate not sustained: %d of %d requests completed", lg.Completed, lg.Scheduled)
			}
		}
	case kindClosed:
		w, err := parseWrk(stdout)
		if err != nil {
			return r, fmt.Errorf("meshpair: wrk on %s: %v: %w", path, runErr, err)
		}
		r.Requests, r.Errors, r.RPS = w.requests, w.errors, w.rps
		if w.errors > 0 {
			r.FirstError = "wrk: " + w.errorText
		}
		if runErr != nil && r.Errors == 0 {
			r.Errors, r.FirstError = 1, fmt.Sprintf("wrk: %v: %s", runErr, strings.TrimSpace(stderr))
		}
	}
	if r.Requests > 0 {
		perReq := func(ticks int64) float64 { return float64(ticks) / procs.ClockTicks * 1e6 / float64(r.Requests) }
		r.ClientCPUus = perReq(after[0] - before[0])
		r.ServerCPUus = perReq(after[1] - before[1])
		r.OriginCPUus = perReq(after[2] - before[2])
	}
	r.SidecarCoreBusy = float64(core1-core0) / procs.ClockTicks / r.WallS
	return r, t.alive()
}

// peakRSS samples VmRSS of the two sidecars every 50 ms until stop is closed.
func peakRSS(stop <-chan struct{}, clientPID, serverPID int, client, server *int64) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	sample := func() {
		if m, err := procs.ReadMemory(clientPID); err == nil {
			*client = max(*client, m.RSS)
		}
		if m, err := procs.ReadMemory(serverPID); err == nil {
			*server = max(*server, m.RSS)
		}
	}
	for i := 0; i < 1_000_000; i++ {
		sample()
		select {
		case <-stop:
			sample()
			return
		case <-tick.C:
		}
	}
}

// wrkResult is what the benchmark reads from wrk's summary.
type wrkResult struct {
	requests  int64
	rps       float64
	errors    int64
	errorText string
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in `)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk's summary: requests, rate, socket errors and non-2xx/3xx responses.
func parseWrk(out string) (wrkResult, error) {
	m := wrkRequests.FindStringSubmatch(out)
	rr := wrkRPS.FindStringSubmatch(out)
	if m == nil || rr == nil {
		if len(out) > 400 {
			out = out[:400]
		}
		return wrkResult{}, fmt.Errorf("unrecognised wrk output: %q", out)
	}
	var w wrkResult
	w.requests, _ = strconv.ParseInt(m[1], 10, 64)
	w.rps, _ = strconv.ParseFloat(rr[1], 64)
	var texts []string
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for i := 1; i <= 4; i++ {
			n, _ := strconv.ParseInt(s[i], 10, 64)
			w.errors += n
		}
		texts = append(texts, s[0])
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		n, _ := strconv.ParseInt(s[1], 10, 64)
		w.errors += n
		texts = append(texts, s[0])
	}
	w.errorText = strings.Join(texts, "; ")
	return w, nil
}
