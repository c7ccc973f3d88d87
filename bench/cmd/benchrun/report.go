package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/meshgate/meshgate/bench/internal/stats"
)

// jf is a float64 that encodes NaN and infinities as JSON null.
type jf float64

// MarshalJSON implements json.Marshaler.
func (f jf) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(v, 'g', 6, 64)), nil
}

// summary is the medians of one proxy's rounds of one workload, with ratios against nginx.
type summary struct {
	Proxy         string `json:"proxy"`
	Rounds        int    `json:"rounds"`
	RPS           jf     `json:"rps"`
	RPSMin        jf     `json:"rps_min"`
	RPSMax        jf     `json:"rps_max"`
	CPUusPerReq   jf     `json:"cpu_us_per_req"`
	ProxyCPUUtil  jf     `json:"proxy_cpu_util"`
	CoreOtherUtil jf     `json:"core_other_util"`
	P50us         jf     `json:"p50_us,omitempty"`
	P99us         jf     `json:"p99_us,omitempty"`
	P999us        jf     `json:"p999_us,omitempty"`
	Errors        int64  `json:"errors"`
	ErrorDetail   string `json:"error_detail,omitempty"`
	RPSVsNginx    jf     `json:"rps_vs_nginx"`
	CPUVsNginx    jf     `json:"cpu_per_req_vs_nginx"`
	P99VsNginx    jf     `json:"p99_vs_nginx,omitempty"`
}

type workloadReport struct {
	Name      string     `json:"name"`
	Desc      string     `json:"description"`
	Latency   bool       `json:"-"`
	Summaries []*summary `json:"summaries"`
}

// report is everything written at the end of a run.
type report struct {
	Meta      *metadata          `json:"meta"`
	Fairness  []string           `json:"fairness"`
	Workloads []*workloadReport  `json:"workloads"`
	Memory    map[string]memInfo `json:"memory,omitempty"`
	MemVsNgx  map[string]jf      `json:"peak_rss_vs_nginx,omitempty"`
	Problems  []string           `json:"problems"`
	Notes     []string           `json:"notes"`
	Runs      []*runResult       `json:"runs"`
	proxies   []string           // table order
	memTable  bool               // the memory workload was selected
}

var fairness = []string{
	"Each proxy is pinned alone to its own core (taskset) with one worker: nginx worker_processes 1, haproxy nbthread 1, meshgate GOMAXPROCS=1; idle proxies stay running but receive no traffic while another is measured.",
	"The origin (nginx, one worker) and the load generators share the other core; every proxy talks to the same origin over HTTP/1.1 keep-alive with an idle pool of 512 connections.",
	"Access logs are off in all three proxies and in the origin; per-connection request limits (nginx keepalive_requests) are raised so no proxy recycles connections.",
	"Same config shape everywhere: one cleartext listener, one TLS 1.3-only listener (one self-signed ECDSA P-256 certificate, ALPN h2 and http/1.1), one route, one upstream.",
	"meshgate does more per request by design (X-Request-Id, X-Forwarded-* headers); nginx and HAProxy run their default header handling.",
	"CPU µs/request = (utime+stime of all the proxy's processes, from /proc/<pid>/stat, after − before the run) / requests completed. Kernel work for loopback traffic counts where the kernel accounts it (with no IRQ time accounting, the sender pays for delivering its packets), alike for all three.",
}

func (b *bench) buildReport() *report {
	rep := &report{Meta: b.meta, Fairness: fairness, Problems: b.problems, Notes: b.notes, Runs: b.runs,
		proxies: b.o.proxies, memTable: b.o.has(wMemory)}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	if rep.Notes == nil {
		rep.Notes = []string{}
	}
	for _, w := range b.o.selected {
		if w.name == wMemory {
			continue
		}
		wr := &workloadReport{Name: w.name, Desc: w.desc, Latency: w.tool == "loadgen"}
		byProxy := map[string]*summary{}
		for _, p := range b.o.proxies {
			var rps, cpu, util, other, p50, p99, p999 []float64
			s := &summary{Proxy: p}
			var errKinds = map[string]int64{}
			for _, r := range b.runs {
				if r.Workload != w.name || r.Proxy != p {
					continue
				}
				s.Rounds++
				s.Errors += r.ErrorCount
				for k, v := range r.Errors {
					errKinds[k] += v
				}
				if r.Failure != "" {
					s.Errors++
					errKinds["failed runs"]++
					continue
				}
				rps = append(rps, r.RPS)
				cpu = append(cpu, float64(r.CPUusPerReq))
				util = append(util, r.ProxyCPUUtil)
				other = append(other, r.CoreOtherUtil)
				p50 = append(p50, r.P50us)
				p99 = append(p99, r.P99us)
				p999 = append(p999, r.P999us)
			}
			s.RPS, s.CPUusPerReq = jf(stats.Median(rps)), jf(stats.Median(cpu))
			s.ProxyCPUUtil, s.CoreOtherUtil = jf(stats.Median(util)), jf(stats.Median(other))
			s.RPSMin, s.RPSMax = jf(minOf(rps)), jf(maxOf(rps))
			if wr.Latency {
				s.P50us, s.P99us, s.P999us = jf(stats.Median(p50)), jf(stats.Median(p99)), jf(stats.Median(p999))
			}
			s.ErrorDetail = (&toolResult{Errors: errKinds}).errorSummary()
			byProxy[p] = s
			wr.Summaries = append(wr.Summaries, s)
		}
		if base, ok := byProxy["nginx"]; ok {
			for _, s := range wr.Summaries {
				s.RPSVsNginx = jf(stats.Ratio(float64(s.RPS), float64(base.RPS)))
				s.CPUVsNginx = jf(stats.Ratio(float64(s.CPUusPerReq), float64(base.CPUusPerReq)))
				if wr.Latency {
					s.P99VsNginx = jf(stats.Ratio(float64(s.P99us), float64(base.P99us)))
				}
			}
		} else {
			for _, s := range wr.Summaries {
				s.RPSVsNginx, s.CPUVsNginx, s.P99VsNginx = jf(math.NaN()), jf(math.NaN()), jf(math.NaN())
			}
		}
		rep.Workloads = append(rep.Workloads, wr)
	}
	if rep.memTable {
		rep.Memory = map[string]memInfo{}
		rep.MemVsNgx = map[string]jf{}
		for _, p := range b.proxies {
			rep.Memory[p.name] = p.mem
		}
		if n, ok := rep.Memory["nginx"]; ok {
			for name, m := range rep.Memory {
				rep.MemVsNgx[name] = jf(stats.Ratio(float64(m.PeakRSS), float64(n.PeakRSS)))
			}
		}
	}
	return rep
}

func minOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs {
		m = math.Min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	m := xs[0]
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

// table is a rendered table: a header row and data rows.
type table struct {
	title string
	head  []string
	rows  [][]string
}

func (r *report) tables() []table {
	var ts []table
	for _, w := range r.Workloads {
		t := table{title: w.Name + " — " + w.Desc}
		if w.Latency {
			t.head = []string{"proxy", "achieved req/s", "p50 µs", "p99 µs", "p99.9 µs", "CPU µs/req", "proxy core busy", "errors", "p99 vs nginx", "CPU/req vs nginx"}
		} else {
			t.head = []string{"proxy", "req/s", "CPU µs/req", "proxy core busy", "other on its core", "req/s min–max", "errors", "req/s vs nginx", "CPU/req vs nginx"}
		}
		for _, s := range w.Summaries {
			errs := strconv.FormatInt(s.Errors, 10)
			if s.ErrorDetail != "" {
				errs += " (" + s.ErrorDetail + ")"
			}
			if w.Latency {
				t.rows = append(t.rows, []string{s.Proxy, fmtNum(float64(s.RPS)), fmtNum(float64(s.P50us)), fmtNum(float64(s.P99us)),
					fmtNum(float64(s.P999us)), fmtNum(float64(s.CPUusPerReq)), fmtPct(float64(s.ProxyCPUUtil)), errs,
					fmtRatio(float64(s.P99VsNginx)), fmtRatio(float64(s.CPUVsNginx))})
			} else {
				t.rows = append(t.rows, []string{s.Proxy, fmtNum(float64(s.RPS)), fmtNum(float64(s.CPUusPerReq)),
					fmtPct(float64(s.ProxyCPUUtil)), fmtPct(float64(s.CoreOtherUtil)),
					fmtNum(float64(s.RPSMin)) + "–" + fmtNum(float64(s.RPSMax)), errs,
					fmtRatio(float64(s.RPSVsNginx)), fmtRatio(float64(s.CPUVsNginx))})
			}
		}
		ts = append(ts, t)
	}
	if r.memTable {
		t := table{title: "memory — RSS summed over the proxy's processes (PSS counts pages shared between nginx's master and worker once)",
			head: []string{"proxy", "processes", "idle RSS after start", "RSS after warm-up", "PSS after warm-up", "peak RSS under h1-keepalive-tiny", "peak RSS vs nginx"}}
		for _, p := range r.proxies {
			m, ok := r.Memory[p]
			if !ok {
				continue
			}
			peak := "-"
			if m.PeakRSS > 0 {
				peak = fmtKiB(m.PeakRSS)
			}
			t.rows = append(t.rows, []string{p, strconv.Itoa(m.Processes), fmtKiB(m.IdleRSS), fmtKiB(m.WarmRSS), fmtKiB(m.WarmPSS), peak, fmtRatio(float64(r.MemVsNgx[p]))})
		}
		ts = append(ts, t)
	}
	return ts
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 0, 64) + "%"
}

func (r *report) header() []string {
	m := r.Meta
	dirty := ""
	if m.MeshgateDirty {
		dirty = " (work tree modified)"
	}
	var versions []string
	for _, k := range sortedKeys(m.Versions) {
		versions = append(versions, fmt.Sprintf("%s: %s", k, m.Versions[k]))
	}
	mode := fmt.Sprintf("%d round(s) × %d s per run, interleaved, medians", m.Settings.Rounds, m.Settings.DurationS)
	if m.Settings.Smoke {
		mode = "SMOKE run (speed not judged): " + mode
	}
	return []string{
		"date: " + m.Date,
		fmt.Sprintf("machine: %d cores, %s, kernel %s, load average at start %s", m.NProc, m.CPUModel, m.Kernel, m.LoadAvgAtStart),
		"meshgate commit: " + m.MeshgateCommit + dirty,
		"versions: " + strings.Join(versions, "; "),
		"mode: " + mode,
		fmt.Sprintf("pinning: proxy on core %d; origin and load generators on core %d; all at nice %d; latency-fixed-rate at %g req/s over %d connections",
			m.Settings.ProxyCore, m.Settings.LoadCore, m.Settings.Nice, m.Settings.LatencyRate, m.Settings.LatencyConns),
	}
}

// text renders the report for a terminal.
func (r *report) text() string {
	var b strings.Builder
	b.WriteString("\n")
	for _, h := range r.header() {
		b.WriteString(h + "\n")
	}
	for _, t := range r.tables() {
		b.WriteString("\n" + t.title + "\n")
		w := make([]int, len(t.head))
		for i, h := range t.head {
			w[i] = runeLen(h)
		}
		for _, row := range t.rows {
			for i, c := range row {
				w[i] = max(w[i], runeLen(c))
			}
		}
		line := func(cells []string) {
			for i, c := range cells {
				pad := strings.Repeat(" ", w[i]-runeLen(c))
				if i == 0 {
					b.WriteString(c + pad)
				} else {
					b.WriteString("  " + pad + c)
				}
			}
			b.WriteString("\n")
		}
		line(t.head)
		for _, row := range t.rows {
			line(row)
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			b.WriteString("  - " + n + "\n")
		}
	}
	return b.String()
}

func runeLen(s string) int { return len([]rune(s)) }

// markdown renders the report as Markdown.
func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString("# meshgate data-plane benchmark results\n\n")
	for _, h := range r.header() {
		b.WriteString("- " + h + "\n")
	}
	b.WriteString("\nRatios are against nginx (below 1× is better for CPU µs/req and p99, above 1× better for req/s). " +
		"\"proxy core busy\" is the proxy's CPU time over the run's wall time: near 100% the proxy was the bottleneck; " +
		"well below, the load generator or origin core was. \"other on its core\" is CPU time of other tasks on the proxy's core (noise).\n")
	b.WriteString(r.markdownTables())
	b.WriteString("\n## Fairness\n\n")
	for _, f := range r.Fairness {
		b.WriteString("- " + f + "\n")
	}
	if len(r.Problems) > 0 {
		b.WriteString("\n## Problems\n\n")
		for _, p := range r.Problems {
			b.WriteString("- " + p + "\n")
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	return b.String()
}

// markdownTables renders only the tables.
func (r *report) markdownTables() string {
	var b strings.Builder
	for _, t := range r.tables() {
		b.WriteString("\n### " + t.title + "\n\n")
		b.WriteString("| " + strings.Join(t.head, " | ") + " |\n")
		seps := make([]string, len(t.head))
		for i := range seps {
			seps[i] = "---:"
		}
		seps[0] = "---"
		b.WriteString("| " + strings.Join(seps, " | ") + " |\n")
		for _, row := range t.rows {
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
	}
	return b.String()
}

func (r *report) write(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
