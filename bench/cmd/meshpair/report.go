package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
	"github.com/meshgate/meshgate/bench/internal/stats"
)

// result is everything one run of the benchmark found; it is written as mesh-pair.json.
type result struct {
	Meta meta `json:"meta"`
	// Memory of the sidecars and the control plane: Idle after the sidecars are ready and before
	// any request, Warm after the warm-up, After at the end.
	Idle  map[string]procs.Memory `json:"memory_idle"`
	Warm  map[string]procs.Memory `json:"memory_warm"`
	After map[string]procs.Memory `json:"memory_after"`
	Runs  []runResult             `json:"runs"`
	// Summary holds the medians over the measured rounds of each kind and path.
	Summary []summary `json:"summary"`
	// Added is the mesh path's median percentile minus the direct path's, microseconds.
	AddedP50us  float64 `json:"added_p50_us"`
	AddedP90us  float64 `json:"added_p90_us"`
	AddedP99us  float64 `json:"added_p99_us"`
	AddedP999us float64 `json:"added_p999_us"`
	// ThroughputRatio is the mesh path's closed-loop req/s over the direct path's.
	ThroughputRatio float64 `json:"throughput_ratio"`
}

// summary is the medians over the measured rounds of one kind and path.
type summary struct {
	Kind            string  `json:"kind"`
	Path            string  `json:"path"`
	Rounds          int     `json:"rounds"`
	Errors          int64   `json:"errors"`
	RPS             float64 `json:"rps"`
	P50us           float64 `json:"p50_us"`
	P90us           float64 `json:"p90_us"`
	P99us           float64 `json:"p99_us"`
	P999us          float64 `json:"p999_us"`
	ClientCPUus     float64 `json:"client_sidecar_cpu_us_per_req"`
	ServerCPUus     float64 `json:"server_sidecar_cpu_us_per_req"`
	OriginCPUus     float64 `json:"origin_cpu_us_per_req"`
	SidecarCoreBusy float64 `json:"sidecar_core_busy"`
	// Peak VmRSS over the rounds, KiB.
	ClientPeakRSS int64 `json:"client_sidecar_peak_rss_kib"`
	ServerPeakRSS int64 `json:"server_sidecar_peak_rss_kib"`
}

// meta describes the machine and the settings.
type meta struct {
	Date       string  `json:"date"`
	NProc      int     `json:"nproc"`
	CPU        string  `json:"cpu"`
	Kernel     string  `json:"kernel"`
	Go         string  `json:"go"`
	Nginx      string  `json:"nginx"`
	Wrk        string  `json:"wrk"`
	Commit     string  `json:"commit"`
	Rate       int     `json:"rate"`
	Conns      int     `json:"conns"`
	WrkConns   int     `json:"wrk_conns"`
	Rounds     int     `json:"rounds"`
	DurationS  float64 `json:"duration_s"`
	ClosedS    float64 `json:"closed_duration_s"`
	SidecarCPU int     `json:"sidecar_cpu"`
	LoadCPU    int     `json:"load_cpu"`
	GOMAXPROCS int     `json:"sidecar_gomaxprocs"`
	Nice       int     `json:"nice"`
	Smoke      bool    `json:"smoke"`
}

func collectMeta(o *options) meta {
	m := meta{Date: time.Now().UTC().Format(time.RFC3339), NProc: nproc(), Go: runtime.Version(),
		Rate: o.rate, Conns: o.conns, WrkConns: o.wrkConns, Rounds: o.rounds,
		DurationS: o.duration.Seconds(), ClosedS: o.closedDur.Seconds(),
		SidecarCPU: o.sidecarCPU, LoadCPU: o.loadCPU, GOMAXPROCS: o.gomaxprocs, Nice: o.nice, Smoke: o.smoke}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Nginx = firstLine(exec.Command("nginx", "-v"))
	m.Wrk = firstLine(exec.Command("wrk", "-v"))
	m.Commit = o.commit
	if m.Commit == "" {
		m.Commit = commit()
	}
	return m
}

// firstLine runs cmd and returns the first line of its combined output.
func firstLine(cmd *exec.Cmd) string {
	b, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// nproc is the number of cores of the machine (not only those this process is pinned to).
func nproc() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	return max(n, 1)
}

// commit is the git commit the benchmark was built from (bench/mesh-pair builds it and meshgate
// from the same tree), with "+dirty" when the tree had changes.
func commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			rev = s.Value[:12]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	return rev + dirty
}

// summarize fills the medians, the added latency and the throughput ratio.
func summarize(res *result) {
	res.Summary = nil
	by := map[string]*summary{}
	vals := map[string]map[string][]float64{}
	for _, kind := range []string{kindFixed, kindClosed} {
		for _, path := range []string{pathDirect, pathMesh} {
			key := kind + "/" + path
			by[key] = &summary{Kind: kind, Path: path}
			vals[key] = map[string][]float64{}
		}
	}
	for _, r := range res.Runs {
		if r.Round == 0 {
			continue
		}
		key := r.Kind + "/" + r.Path
		s, v := by[key], vals[key]
		s.Rounds++
		s.Errors += r.Errors
		s.ClientPeakRSS = max(s.ClientPeakRSS, r.ClientPeakRSS)
		s.ServerPeakRSS = max(s.ServerPeakRSS, r.ServerPeakRSS)
		for name, x := range map[string]float64{"rps": r.RPS, "p50": r.P50us, "p90": r.P90us, "p99": r.P99us,
			"p999": r.P999us, "client": r.ClientCPUus, "server": r.ServerCPUus, "origin": r.OriginCPUus, "busy": r.SidecarCoreBusy} {
			v[name] = append(v[name], x)
		}
	}
	for _, kind := range []string{kindFixed, kindClosed} {
		for _, path := range []string{pathDirect, pathMesh} {
			key := kind + "/" + path
			s, v := by[key], vals[key]
			if s.Rounds == 0 {
				continue
			}
			s.RPS, s.P50us, s.P90us, s.P99us, s.P999us = stats.Median(v["rps"]), stats.Median(v["p50"]), stats.Median(v["p90"]), stats.Median(v["p99"]), stats.Median(v["p999"])
			s.ClientCPUus, s.ServerCPUus, s.OriginCPUus = stats.Median(v["client"]), stats.Median(v["server"]), stats.Median(v["origin"])
			s.SidecarCoreBusy = stats.Median(v["busy"])
			res.Summary = append(res.Summary, *s)
		}
	}
	fd, fm := by[kindFixed+"/"+pathDirect], by[kindFixed+"/"+pathMesh]
	if fd.Rounds > 0 && fm.Rounds > 0 {
		res.AddedP50us, res.AddedP90us = fm.P50us-fd.P50us, fm.P90us-fd.P90us
		res.AddedP99us, res.AddedP999us = fm.P99us-fd.P99us, fm.P999us-fd.P999us
	}
	cd, cm := by[kindClosed+"/"+pathDirect], by[kindClosed+"/"+pathMesh]
	if cd.Rounds > 0 && cm.Rounds > 0 {
		res.ThroughputRatio = stats.Ratio(cm.RPS, cd.RPS)
	}
}

// markdown renders the result as Markdown tables.
func markdown(res *result) string {
	var b strings.Builder
	m := res.Meta
	fmt.Fprintf(&b, "## Sidecar pair (mesh data path)\n\n")
	fmt.Fprintf(&b, "%s · %d cores · %s · kernel %s · %s · %s · %s · meshgate %s\n\n", m.Date, m.NProc, m.CPU, m.Kernel, m.Go, m.Nginx, m.Wrk, m.Commit)
	fmt.Fprintf(&b, "sidecars on core %d (GOMAXPROCS=%d each); origin, control plane and load generators on core %d; nice %d; %d rounds; fixed rate %d req/s over %d connections for %gs; closed loop wrk -t1 -c%d for %gs\n\n",
		m.SidecarCPU, m.GOMAXPROCS, m.LoadCPU, m.Nice, m.Rounds, m.Rate, m.Conns, m.DurationS, m.WrkConns, m.ClosedS)

	b.WriteString("Fixed rate (open loop; latency from each request's scheduled time; medians over rounds):\n\n")
	b.WriteString("| path | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | client sidecar CPU µs/req | server sidecar CPU µs/req | origin CPU µs/req | errors |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range res.Summary {
		if s.Kind == kindFixed {
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %s | %s | %.1f | %d |\n", s.Path, s.RPS, s.P50us, s.P90us, s.P99us, s.P999us,
				sidecarCPU(s, s.ClientCPUus), sidecarCPU(s, s.ServerCPUus), s.OriginCPUus, s.Errors)
		}
	}
	fmt.Fprintf(&b, "| **added by the mesh** | | **%+.0f** | %+.0f | **%+.0f** | %+.0f | | | | |\n\n", res.AddedP50us, res.AddedP90us, res.AddedP99us, res.AddedP999us)

	b.WriteString("Closed loop (maximum throughput; medians over rounds):\n\n")
	b.WriteString("| path | req/s | client sidecar CPU µs/req | server sidecar CPU µs/req | origin CPU µs/req | sidecar core busy | errors |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range res.Summary {
		if s.Kind == kindClosed {
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %.1f | %.0f%% | %d |\n", s.Path, s.RPS,
				sidecarCPU(s, s.ClientCPUus), sidecarCPU(s, s.ServerCPUus), s.OriginCPUus, 100*s.SidecarCoreBusy, s.Errors)
		}
	}
	fmt.Fprintf(&b, "| **mesh / direct** | **%.3f** | | | | | |\n\n", res.ThroughputRatio)

	b.WriteString("Sidecar memory (VmRSS; anonymous and file-backed parts; PSS):\n\n")
	b.WriteString("| process | idle RSS | idle anon | idle file | idle PSS | after warm-up RSS | peak RSS at fixed rate | peak RSS closed loop | threads (end) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	peak := func(kind string, client bool) int64 {
		for _, s := range res.Summary {
			if s.Kind == kind && s.Path == pathMesh {
				if client {
					return s.ClientPeakRSS
				}
				return s.ServerPeakRSS
			}
		}
		return 0
	}
	for _, p := range []struct {
		key, name string
		client    bool
	}{{"client_sidecar", "client sidecar", true}, {"server_sidecar", "server sidecar", false}} {
		i, w, a := res.Idle[p.key], res.Warm[p.key], res.After[p.key]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", p.name, mib(i.RSS), mib(i.Anon), mib(i.File), mib(i.PSS),
			mib(w.RSS), mib(peak(kindFixed, p.client)), mib(peak(kindClosed, p.client)), a.Threads)
	}
	c := res.Idle["control"]
	fmt.Fprintf(&b, "| (control plane, idle) | %s | %s | %s | %s | | | | |\n\n", mib(c.RSS), mib(c.Anon), mib(c.File), mib(c.PSS))
	return b.String()
}

// sidecarCPU shows a sidecar's CPU per request; on the direct path the sidecars carry no traffic.
func sidecarCPU(s summary, v float64) string {
	if s.Path == pathDirect {
		return "—"
	}
	return fmt.Sprintf("%.1f", v)
}

// mib formats KiB as MiB.
func mib(kib int64) string {
	if kib == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(kib)/1024)
}

// writeJSON writes v indented to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
