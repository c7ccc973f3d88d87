package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"time"
)

// metadata describes the machine, the tools and the settings of a run.
type metadata struct {
	Date           string            `json:"date"`
	NProc          int               `json:"nproc"`
	CPUModel       string            `json:"cpu_model"`
	Kernel         string            `json:"kernel"`
	LoadAvgAtStart string            `json:"loadavg_at_start"`
	Versions       map[string]string `json:"versions"`
	MeshgateCommit string            `json:"meshgate_commit"`
	MeshgateDirty  bool              `json:"meshgate_worktree_modified"`
	Settings       settings          `json:"settings"`
}

// settings are the knobs of the run, recorded with its results.
type settings struct {
	Smoke           bool     `json:"smoke"`
	Rounds          int      `json:"rounds"`
	DurationS       int      `json:"duration_s"`
	WarmupS         int      `json:"warmup_s"`
	Workloads       []string `json:"workloads"`
	Proxies         []string `json:"proxies"`
	ProxyCore       int      `json:"proxy_core"`
	LoadCore        int      `json:"load_core"`
	LatencyRate     float64  `json:"latency_rate"`
	LatencyConns    int      `json:"latency_conns"`
	UpstreamIdle    int      `json:"upstream_idle_pool"`
	ClockTicksPerS  int64    `json:"clk_tck"`
	LoadGenerators  string   `json:"load_generators"`
	WrkConnections  int      `json:"wrk_connections"`
	H2loadShape     string   `json:"h2load_shape"`
	ProxyThreadsCfg string   `json:"proxy_threads"`
	Nice            int      `json:"nice"`
}

func collectMetadata(o *options) *metadata {
	m := &metadata{
		Date:     o.startedAt.Format(time.RFC3339),
		NProc:    numCPU(),
		CPUModel: cpuModel(),
		Kernel:   strings.TrimSpace(cmdOut("uname", "-r")),
		Versions: map[string]string{},
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvgAtStart = strings.Join(f[:3], " ")
		}
	}
	m.Versions["nginx"] = firstLine(cmdOut("nginx", "-v"))
	m.Versions["haproxy"], _, _ = strings.Cut(firstLine(cmdOut("haproxy", "-v")), " - ")
	m.Versions["wrk"], _, _ = strings.Cut(firstLine(cmdOut("wrk", "-v")), " Copyright")
	m.Versions["h2load"] = firstLine(cmdOut("h2load", "--version"))
	m.Versions["go"] = firstLine(cmdOut("go", "version"))
	m.Versions["openssl"] = firstLine(cmdOut("openssl", "version"))
	// Read-only git queries; optional locks off so that nothing in the repository is written.
	m.MeshgateCommit = strings.TrimSpace(gitOut(o.repo, "rev-parse", "HEAD"))
	if m.MeshgateCommit == "" {
		m.MeshgateCommit = "unknown"
	}
	m.MeshgateDirty = strings.TrimSpace(gitOut(o.repo, "status", "--porcelain", "--untracked-files=no")) != ""
	var names []string
	for _, w := range o.selected {
		names = append(names, w.name)
	}
	m.Settings = settings{
		Smoke: o.smoke, Rounds: o.rounds, DurationS: o.duration, WarmupS: o.warmup,
		Workloads: names, Proxies: o.proxies, ProxyCore: o.proxyCPU, LoadCore: o.loadCPU,
		LatencyRate: o.rate, LatencyConns: o.latConns, UpstreamIdle: upstreamIdle,
		ClockTicksPerS: o.clkTck,
		LoadGenerators: "wrk -t1 (HTTP/1.1, HTTPS), h2load -t1 (h2), bench/cmd/loadgen (open-loop fixed rate)",
		WrkConnections: 64, H2loadShape: "-c16 -m32",
		ProxyThreadsCfg: "nginx worker_processes 1; haproxy nbthread 1; meshgate GOMAXPROCS=1",
		Nice:            o.nice,
	}
	return m
}

// cmdOut runs a command and returns its combined output ("" if it cannot run). Some tools print
// their version on stderr and exit non-zero, so the status is ignored.
func cmdOut(name string, args ...string) string {
	cmd := exec.Command(name, args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	_ = cmd.Run()
	return b.String()
}

func gitOut(dir string, args ...string) string {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0")
	b, err := cmd.Output()
	if err != nil {
		return ""
	}
	return string(b)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
