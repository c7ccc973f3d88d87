package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
	"github.com/meshgate/meshgate/bench/internal/stats"
)

// bench is one invocation of the suite.
type bench struct {
	o       *options
	ps      *procs.Group
	ctx     context.Context
	files   *setup
	meta    *metadata
	origin  *procs.Proc
	proxies []*proxy
	runs    []*runResult
	// problems are failures that make the exit status non-zero; notes are oddities worth a look.
	problems []string
	notes    []string
}

// proxy is one proxy under test.
type proxy struct {
	name      string
	httpPort  int
	tlsPort   int
	p         *procs.Proc
	logs      []string // files to scan for warnings and errors afterwards
	processes int
	mem       memInfo
}

// memInfo is the memory a proxy used, summed over its processes, in KiB.
type memInfo struct {
	IdleRSS   int64 `json:"idle_rss_kib"`
	IdlePSS   int64 `json:"idle_pss_kib"`
	WarmRSS   int64 `json:"warm_rss_kib"`
	WarmPSS   int64 `json:"warm_pss_kib"`
	PeakRSS   int64 `json:"peak_rss_kib"`
	Processes int   `json:"processes"`
}

// runResult is one measured run of one workload against one proxy.
type runResult struct {
	Workload      string           `json:"workload"`
	Proxy         string           `json:"proxy"`
	Round         int              `json:"round"`
	Requests      int64            `json:"requests"`
	ToolDurationS float64          `json:"tool_duration_s"`
	WallS         float64          `json:"wall_s"`
	RPS           float64          `json:"rps"`
	CPUTicks      int64            `json:"cpu_ticks"`
	CPUusPerReq   jf               `json:"cpu_us_per_req"`
	ProxyCPUUtil  float64          `json:"proxy_cpu_util"`
	CoreOtherUtil float64          `json:"core_other_util"`
	P50us         float64          `json:"p50_us,omitempty"`
	P99us         float64          `json:"p99_us,omitempty"`
	P999us        float64          `json:"p999_us,omitempty"`
	MaxUs         float64          `json:"max_us,omitempty"`
	PeakRSSKiB    int64            `json:"peak_rss_kib,omitempty"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	ErrorCount    int64            `json:"error_count"`
	ErrorNote     string           `json:"error_note,omitempty"`
	Failure       string           `json:"failure,omitempty"`
	TLSProtocol   string           `json:"tls_protocol,omitempty"`
	Cipher        string           `json:"cipher,omitempty"`
	ALPN          string           `json:"alpn,omitempty"`
}

func (b *bench) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.problems = append(b.problems, msg)
	fmt.Fprintln(os.Stderr, "PROBLEM:", msg)
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, msg)
	fmt.Fprintln(os.Stderr, "note:", msg)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// run is the whole suite; it returns the exit status.
func (b *bench) run() int {
	o := b.o
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		b.problem("output directory: %v", err)
		return 2
	}
	b.meta = collectMetadata(o)
	b.logf("meshgate data-plane benchmark: %d round(s) × %d s, workloads: %s", o.rounds, o.duration, selectedNames(o))
	b.logf("proxies pinned to core %d; origin and load generators pinned to core %d; %d cores (%s)",
		o.proxyCPU, o.loadCPU, b.meta.NProc, b.meta.CPUModel)
	if err := b.setup(); err != nil {
		b.problem("setup: %v", err)
		return 2
	}
	b.warmUp()
	if o.has(wMemory) && !o.has(wTiny) && b.ctx.Err() == nil {
		// Peak memory is taken under h1-keepalive-tiny, before any other load: run it once (not
		// reported as a workload).
		tiny, _ := workloadByName(wTiny)
		for _, p := range b.proxies {
			r := b.measure(tiny, p, 0)
			p.mem.PeakRSS = max(p.mem.PeakRSS, r.PeakRSSKiB)
		}
	}
	for _, w := range o.selected {
		if b.ctx.Err() != nil {
			break
		}
		if w.name == wMemory {
			continue
		}
		b.runWorkload(w)
	}
	b.checkAlive()
	b.scanLogs()
	if b.ctx.Err() != nil {
		return 130
	}
	rep := b.buildReport()
	fmt.Print(rep.text())
	if err := rep.write(o.out); err != nil {
		b.problem("writing results: %v", err)
	} else {
		b.logf("wrote %s and %s", filepath.Join(o.out, "results.md"), filepath.Join(o.out, "results.json"))
	}
	if len(b.problems) > 0 {
		fmt.Fprintf(os.Stderr, "benchrun: %d problem(s):\n", len(b.problems))
		for _, p := range b.problems {
			fmt.Fprintln(os.Stderr, "  -", p)
		}
		return 1
	}
	return 0
}

func selectedNames(o *options) string {
	var n []string
	for _, w := range o.selected {
		n = append(n, w.name)
	}
	return strings.Join(n, ", ")
}

// setup writes the configs, starts the origin and the proxies, and checks that each proxies
// correctly.
func (b *bench) setup() error {
	o := b.o
	s, err := prepareFiles(o.out)
	if err != nil {
		return err
	}
	// Fresh logs for this run (nginx appends to its error logs).
	if old, err := filepath.Glob(filepath.Join(o.out, "logs", "*.log")); err == nil {
		for _, f := range old {
			_ = os.Remove(f)
		}
	}
	b.files = s
	ports := []int{originPort}
	for _, name := range o.proxies {
		switch name {
		case "meshgate":
			ports = append(ports, meshgateHTTPPort, meshgateTLSPort, meshgateAdmin)
		case "nginx":
			ports = append(ports, nginxHTTPPort, nginxTLSPort)
		case "haproxy":
			ports = append(ports, haproxyHTTPPort, haproxyTLSPort)
		}
	}
	for _, p := range ports {
		if !procs.PortFree(fmt.Sprintf("127.0.0.1:%d", p)) {
			return fmt.Errorf("port 127.0.0.1:%d is in use; stop whatever holds it", p)
		}
	}
	isRoot := os.Geteuid() == 0
	ngv := nginxVersion(b.meta.Versions["nginx"])
	base := confData{Out: o.out, WWW: s.www, Cert: s.certPEM, Key: s.keyPEM, Combo: s.comboPEM,
		OriginPort: originPort, Idle: upstreamIdle, AdminPort: meshgateAdmin, Root: isRoot,
		HTTP2On: nginxHTTP2OnDirective(ngv)}
	conf := func(n string) string { return filepath.Join(o.out, "conf", n) }
	logf := func(n string) string { return filepath.Join(o.out, "logs", n) }

	// The origin: nginx, one worker, on the load generators' core.
	d := base
	d.Name, d.Port = "origin", originPort
	if err := writeConf(originConf, conf("origin.conf"), d); err != nil {
		return err
	}
	b.origin, err = b.ps.Start("origin", procs.Pin(o.loadCPU, o.nice, "nginx", "-p", o.out, "-e", logf("origin-error.log"), "-c", conf("origin.conf")), nil, logf("origin.log"))
	if err != nil {
		return err
	}
	if err := procs.WaitListening(b.origin, fmt.Sprintf("127.0.0.1:%d", originPort), 10*time.Second); err != nil {
		return err
	}
	if err := checkOrigin(fmt.Sprintf("127.0.0.1:%d", originPort)); err != nil {
		return fmt.Errorf("origin: %w", err)
	}

	for _, name := range o.proxies {
		var argv, env []string
		p := &proxy{name: name}
		d := base
		d.Name = name
		switch name {
		case "meshgate":
			p.httpPort, p.tlsPort = meshgateHTTPPort, meshgateTLSPort
			d.Port, d.TLSPort = p.httpPort, p.tlsPort
			if err := writeConf(meshgateConf, conf("meshgate.yaml"), d); err != nil {
				return err
			}
			argv = procs.Pin(o.proxyCPU, o.nice, o.meshgate, "gateway", "--config", conf("meshgate.yaml"))
			env = []string{"GOMAXPROCS=1"}
			p.logs = []string{logf("meshgate.log")}
		case "nginx":
			p.httpPort, p.tlsPort = nginxHTTPPort, nginxTLSPort
			d.Port, d.TLSPort = p.httpPort, p.tlsPort
			if err := writeConf(nginxProxyConf, conf("nginx.conf"), d); err != nil {
				return err
			}
			argv = procs.Pin(o.proxyCPU, o.nice, "nginx", "-p", o.out, "-e", logf("nginx-error.log"), "-c", conf("nginx.conf"))
			p.logs = []string{logf("nginx.log"), logf("nginx-error.log")}
		case "haproxy":
			p.httpPort, p.tlsPort = haproxyHTTPPort, haproxyTLSPort
			d.Port, d.TLSPort = p.httpPort, p.tlsPort
			if err := writeConf(haproxyConf, conf("haproxy.cfg"), d); err != nil {
				return err
			}
			argv = procs.Pin(o.proxyCPU, o.nice, "haproxy", "-db", "-f", conf("haproxy.cfg"))
			p.logs = []string{logf("haproxy.log")}
		}
		p.p, err = b.ps.Start(name, argv, env, logf(name+".log"))
		if err != nil {
			return err
		}
		for _, port := range []int{p.httpPort, p.tlsPort} {
			if err := procs.WaitListening(p.p, fmt.Sprintf("127.0.0.1:%d", port), 15*time.Second); err != nil {
				return fmt.Errorf("%s failed to start: %w", name, err)
			}
		}
		b.proxies = append(b.proxies, p)
	}
	// Let every worker finish starting, then take the idle memory before any request.
	time.Sleep(300 * time.Millisecond)
	for _, p := range b.proxies {
		pids := procs.Tree(p.p.PID())
		p.processes = len(pids)
		p.mem.Processes = len(pids)
		p.mem.IdleRSS, p.mem.IdlePSS, _ = procs.MemKB(pids)
		if p.name == "haproxy" && len(pids) != 1 {
			b.note("haproxy runs as %d processes, expected 1", len(pids))
		}
		if p.name == "meshgate" && len(pids) != 1 {
			b.note("meshgate runs as %d processes, expected 1", len(pids))
		}
		if p.name == "nginx" && len(pids) != 2 {
			b.note("nginx runs as %d processes, expected 2 (master and one worker)", len(pids))
		}
	}
	for _, p := range b.proxies {
		if err := checkProxy(p, s.certPEM); err != nil {
			return fmt.Errorf("%s does not proxy correctly: %w", p.name, err)
		}
		b.logf("%-8s ready: http :%d, https :%d (TLS 1.3, h2 and http/1.1), %d process(es), idle RSS %s",
			p.name, p.httpPort, p.tlsPort, p.processes, fmtKiB(p.mem.IdleRSS))
	}
	return nil
}

// warmUp sends every proxy a short burst of h1-keepalive-tiny and records its memory afterwards.
func (b *bench) warmUp() {
	tiny, _ := workloadByName(wTiny)
	for _, p := range b.proxies {
		if b.ctx.Err() != nil {
			return
		}
		r := b.measureFor(tiny, p, 0, 1)
		if b.ctx.Err() != nil {
			return
		}
		if r.Failure != "" || r.ErrorCount > 0 {
			b.problem("%s: warm-up failed: %s", p.name, failureText(r))
		}
		pids := procs.Tree(p.p.PID())
		p.mem.WarmRSS, p.mem.WarmPSS, _ = procs.MemKB(pids)
	}
}

// runWorkload runs one workload's interleaved rounds.
func (b *bench) runWorkload(w workload) {
	b.logf("\n== %s: %s", w.name, w.desc)
	if b.o.warmup > 0 {
		for _, p := range b.proxies {
			r := b.measureFor(w, p, 0, b.o.warmup)
			if r.Failure != "" || r.ErrorCount > 0 {
				b.note("%s %s warm-up: %s", w.name, p.name, failureText(r))
			}
		}
	}
	for round := 1; round <= b.o.rounds; round++ {
		for _, p := range b.proxies {
			if b.ctx.Err() != nil {
				return
			}
			r := b.measure(w, p, round)
			if b.ctx.Err() != nil {
				return // interrupted: the run was cut short, not failed
			}
			b.runs = append(b.runs, r)
			line := fmt.Sprintf("  [%d/%d] %-8s %9.0f req/s  %7s µs CPU/req  proxy CPU %3.0f%%  other on its core %2.0f%%",
				round, b.o.rounds, p.name, r.RPS, fmtNum(float64(r.CPUusPerReq)), 100*r.ProxyCPUUtil, 100*r.CoreOtherUtil)
			if w.tool == "loadgen" {
				line += fmt.Sprintf("  p50 %s p99 %s p99.9 %s µs", fmtNum(r.P50us), fmtNum(r.P99us), fmtNum(r.P999us))
			}
			if r.Failure != "" || r.ErrorCount > 0 {
				line += "  ERRORS: " + failureText(r)
				b.problem("%s round %d, %s: %s", w.name, round, p.name, failureText(r))
			}
			b.logf("%s", line)
			if w.name == wTiny {
				p.mem.PeakRSS = max(p.mem.PeakRSS, r.PeakRSSKiB)
			}
		}
	}
	var other []float64
	for _, r := range b.runs {
		if r.Workload == w.name && r.Failure == "" {
			other = append(other, r.CoreOtherUtil)
		}
	}
	if w.tool == "h2load" {
		var ciphers []string
		for _, p := range b.proxies {
			for _, r := range b.runs {
				if r.Workload == w.name && r.Proxy == p.name && r.Cipher != "" {
					ciphers = append(ciphers, p.name+" "+r.TLSProtocol+" "+r.Cipher)
					break
				}
			}
		}
		if len(ciphers) > 0 {
			b.note("%s negotiated: %s", w.name, strings.Join(ciphers, "; "))
		}
	}
	if m := stats.Median(other); m > 0.10 {
		b.note("%s: other tasks used %.0f%% of the proxies' core (median over runs): the machine was not quiet; compare these numbers with care", w.name, 100*m)
	}
}

func failureText(r *runResult) string {
	var parts []string
	if r.Failure != "" {
		parts = append(parts, r.Failure)
	}
	if r.ErrorCount > 0 {
		t := &toolResult{Errors: r.Errors}
		parts = append(parts, t.errorSummary())
	}
	if r.ErrorNote != "" {
		parts = append(parts, "first error: "+r.ErrorNote)
	}
	return strings.Join(parts, "; ")
}

func (b *bench) measure(w workload, p *proxy, round int) *runResult {
	return b.measureFor(w, p, round, b.o.duration)
}

// measureFor runs workload w against p for secs seconds and measures the proxy's CPU time.
func (b *bench) measureFor(w workload, p *proxy, round, secs int) *runResult {
	o := b.o
	r := &runResult{Workload: w.name, Proxy: p.name, Round: round}
	scheme, port := "http", p.httpPort
	if w.tls {
		scheme, port = "https", p.tlsPort
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, w.path)
	d := strconv.Itoa(secs)
	var argv, env []string
	switch w.tool {
	case "wrk":
		argv = []string{"wrk", "-t1", "-c64", "-d" + d + "s", "--timeout", "2s"}
		if w.close {
			argv = append(argv, "-H", "Connection: close")
		}
		argv = append(argv, url)
	case "h2load":
		// -N: a connection silent for 5 s is given up (counted as timeouts) rather than hanging.
		argv = []string{"h2load", "-t1", "-c16", "-m32", "-N", "5s", "-D", d, url}
	case "loadgen":
		argv = []string{o.loadgen, "-url", url, "-rate", strconv.FormatFloat(o.rate, 'f', -1, 64),
			"-c", strconv.Itoa(o.latConns), "-d", d + "s", "-timeout", "2s"}
		env = []string{"GOMAXPROCS=1"}
	}
	argv = procs.Pin(o.loadCPU, o.nice, argv...)

	pids := procs.Tree(p.p.PID())
	before, err := procs.CPUTicks(pids)
	if err != nil {
		r.Failure = err.Error()
		return r
	}
	core0, _ := procs.ReadCoreStat(o.proxyCPU)

	// Sample the proxy's memory while the load runs.
	stopSampling := make(chan struct{})
	var peak int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for i := 0; i < 100000; i++ {
			if rss, _, err := procs.MemKB(pids); err == nil {
				peak = max(peak, rss)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	start := time.Now()
	stdout, stderr, runErr := procs.RunTool(b.ctx, argv, env, time.Duration(secs)*time.Second+15*time.Second)
	wall := time.Since(start)
	close(stopSampling)
	wg.Wait()
	after, err := procs.CPUTicks(pids)
	core1, _ := procs.ReadCoreStat(o.proxyCPU)
	r.WallS = wall.Seconds()
	r.PeakRSSKiB = peak
	if err != nil {
		r.Failure = fmt.Sprintf("%s died during the run: %v", p.name, err)
		return r
	}

	var tr *toolResult
	switch w.tool {
	case "wrk":
		tr, err = parseWrk(stdout)
	case "h2load":
		tr, err = parseH2load(stdout)
	case "loadgen":
		tr, err = parseLoadgen(stdout, o.rate)
	}
	if err != nil {
		msg := err.Error()
		if runErr != nil {
			msg = fmt.Sprintf("%v: %s %s", runErr, truncate(strings.TrimSpace(stderr), 300), msg)
		}
		r.Failure = msg
		return r
	}
	// wrk exits 0 even with errors; h2load and loadgen exit non-zero when requests failed, which
	// the parsed error counts already say.
	if runErr != nil && tr.errorCount() == 0 && w.tool == "wrk" {
		r.Failure = fmt.Sprintf("wrk: %v: %s", runErr, truncate(strings.TrimSpace(stderr), 300))
	}
	r.Requests, r.ToolDurationS, r.RPS = tr.Requests, tr.DurationS, tr.RPS
	r.Errors, r.ErrorCount = tr.Errors, tr.errorCount()
	r.P50us, r.P99us, r.P999us, r.MaxUs = tr.P50us, tr.P99us, tr.P999us, tr.MaxUs
	r.TLSProtocol, r.Cipher, r.ALPN = tr.TLSProtocol, tr.Cipher, tr.ALPN
	if r.ErrorCount > 0 {
		r.ErrorNote = tr.FirstError
	}
	if w.tool == "h2load" && r.TLSProtocol != "" && r.TLSProtocol != "TLSv1.3" {
		r.Failure = "negotiated " + r.TLSProtocol + ", not TLSv1.3"
	}
	r.CPUTicks = after - before
	cpuS := float64(r.CPUTicks) / float64(o.clkTck)
	r.CPUusPerReq = jf(math.NaN())
	if r.Requests > 0 {
		r.CPUusPerReq = jf(cpuS * 1e6 / float64(r.Requests))
	} else if r.Failure == "" {
		r.Failure = "no request completed"
	}
	r.ProxyCPUUtil = cpuS / wall.Seconds()
	otherTicks := core1.BusyTasks() - core0.BusyTasks() - r.CPUTicks
	r.CoreOtherUtil = max(0, float64(otherTicks)/float64(o.clkTck)/wall.Seconds())
	return r
}

// checkAlive reports processes that died during the runs.
func (b *bench) checkAlive() {
	if b.origin != nil && b.origin.Exited() {
		b.problem("the origin exited during the runs: %v", b.origin.Err())
	}
	for _, p := range b.proxies {
		if p.p.Exited() {
			b.problem("%s exited during the runs: %v (see logs/%s.log)", p.name, p.p.Err(), p.name)
		}
	}
}

// scanLogs notes warnings and errors the proxies logged.
func (b *bench) scanLogs() {
	markers := map[string][]string{
		"meshgate": {"level=ERROR", "level=WARN", `"level":"ERROR"`, `"level":"WARN"`, "panic:"},
		"nginx":    {"[warn]", "[error]", "[crit]", "[alert]", "[emerg]"},
		"haproxy":  {"[ALERT]", "[WARNING]"},
	}
	for _, p := range b.proxies {
		var hits []string
		n := 0
		for _, f := range p.logs {
			data, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(data), "\n") {
				for _, m := range markers[p.name] {
					if strings.Contains(line, m) {
						n++
						if len(hits) < 3 {
							hits = append(hits, truncate(strings.TrimSpace(line), 240))
						}
						break
					}
				}
			}
		}
		if n > 0 {
			b.note("%s logged %d warning/error line(s), first: %s", p.name, n, strings.Join(hits, " | "))
		}
	}
}

func fmtKiB(k int64) string {
	return fmt.Sprintf("%.1f MiB", float64(k)/1024)
}
