// Command benchrun runs meshgate, nginx and HAProxy side by side as reverse proxies in front of
// one nginx origin and compares their throughput, CPU time per request, latency and memory.
//
// It is started by bench/run, which installs the peers and builds the binaries first; see
// bench/README.md for what each workload measures and how.
//
// Every proxy runs pinned alone to one core (one worker, one thread, GOMAXPROCS=1); the origin and
// the load generators share another core. Workloads run in interleaved rounds (meshgate, nginx,
// haproxy, meshgate, ...) and medians are reported, as tables on standard output and as Markdown
// and JSON files in the output directory. The exit status is 0 when every proxy started and every
// run completed without errors, 1 when a run failed or saw errors, 2 when the setup failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
)

// options are the command-line settings.
type options struct {
	smoke     bool
	rounds    int
	duration  int // seconds per measured run
	warmup    int // seconds of per-workload warm-up per proxy (0: none)
	only      []string
	proxies   []string
	out       string
	repo      string
	meshgate  string
	loadgen   string
	rate      float64
	latConns  int
	proxyCPU  int
	loadCPU   int
	clkTck    int64
	nice      int // scheduling priority of every started process (0: unchanged)
	selected  []workload
	startedAt time.Time
}

func main() {
	os.Exit(realMain())
}

func realMain() int {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ps := procs.NewGroup(filepath.Join(o.out, "pids"), 3*time.Second)
	defer ps.StopAll()

	b := &bench{o: o, ps: ps, ctx: ctx}
	if err := procs.RaisePriority(o.nice); err != nil {
		b.note("could not raise the benchmark's priority (%v); background load will disturb it more", err)
	}
	code := b.run()
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "benchrun: interrupted")
		return 130
	}
	return code
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	o := &options{startedAt: time.Now().UTC()}
	var only, proxies string
	fs.BoolVar(&o.smoke, "smoke", false, "prove the pipeline runs: 1 round, 1 s per workload, no speed judged")
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds per workload (medians are reported)")
	fs.IntVar(&o.duration, "duration", 5, "seconds per measured run")
	fs.IntVar(&o.warmup, "warmup", 1, "seconds of warm-up per proxy before each workload's rounds (0: none)")
	fs.StringVar(&only, "only", "", "comma-separated workloads to run (default: all): "+workloadNames())
	fs.StringVar(&proxies, "proxies", "meshgate,nginx,haproxy", "comma-separated proxies to compare (nginx is the ratios' baseline)")
	fs.StringVar(&o.out, "out", "bench/out", "output directory (configs, logs, results)")
	fs.StringVar(&o.repo, "repo", ".", "repository root, for meshgate's commit")
	fs.StringVar(&o.meshgate, "meshgate", "bench/out/meshgate", "meshgate binary")
	fs.StringVar(&o.loadgen, "loadgen", "bench/out/loadgen", "open-loop load generator binary")
	fs.Float64Var(&o.rate, "rate", 5000, "request rate of latency-fixed-rate, per second")
	fs.IntVar(&o.latConns, "latency-conns", 32, "keep-alive connections of latency-fixed-rate")
	fs.IntVar(&o.proxyCPU, "proxy-cpu", 0, "core the proxies are pinned to")
	fs.IntVar(&o.loadCPU, "load-cpu", 1, "core the origin and the load generators are pinned to")
	fs.IntVar(&o.nice, "nice", -10, "nice value of the benchmark's processes, in a scheduling group of their own (0: leave priority alone; negative needs root)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.duration = 1
		}
		if !set["warmup"] {
			o.warmup = 0
		}
		if !set["rate"] {
			o.rate = 2000
		}
		if !set["nice"] {
			o.nice = 0
		}
	}
	if o.rounds < 1 || o.rounds > 100 {
		return nil, errors.New("--rounds must be 1..100")
	}
	if o.duration < 1 || o.duration > 600 {
		return nil, errors.New("--duration must be 1..600 seconds")
	}
	if o.warmup < 0 || o.warmup > 60 {
		return nil, errors.New("--warmup must be 0..60 seconds")
	}
	if o.nice < -20 || o.nice > 19 {
		return nil, errors.New("--nice must be -20..19")
	}
	if o.nice < 0 && os.Geteuid() != 0 {
		o.nice = 0
	}
	if o.rate <= 0 || o.rate > 1e6 || o.latConns < 1 || o.latConns > 10000 {
		return nil, errors.New("--rate and --latency-conns out of range")
	}
	if only == "" {
		o.selected = workloads
	} else {
		want := map[string]bool{}
		for _, n := range strings.Split(only, ",") {
			n = strings.TrimSpace(n)
			if _, ok := workloadByName(n); !ok {
				return nil, fmt.Errorf("unknown workload %q; known: %s", n, workloadNames())
			}
			want[n] = true
		}
		// Always in the suite's order, so that h1-keepalive-tiny (and its memory peak) comes first.
		for _, w := range workloads {
			if want[w.name] {
				o.selected = append(o.selected, w)
			}
		}
	}
	for _, p := range strings.Split(proxies, ",") {
		p = strings.TrimSpace(p)
		switch p {
		case "meshgate", "nginx", "haproxy":
			o.proxies = append(o.proxies, p)
		default:
			return nil, fmt.Errorf("unknown proxy %q", p)
		}
	}
	n := numCPU()
	if n < 2 {
		// One core: everything shares it; the numbers are then only a smoke signal.
		o.proxyCPU, o.loadCPU = 0, 0
	}
	if o.proxyCPU >= n || o.loadCPU >= n {
		return nil, fmt.Errorf("--proxy-cpu/--load-cpu: this machine has %d cores", n)
	}
	var err error
	for _, p := range []*string{&o.out, &o.repo, &o.meshgate, &o.loadgen} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	o.clkTck = 100
	if b, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v > 0 {
			o.clkTck = v
		}
	}
	return o, nil
}

func workloadNames() string {
	var n []string
	for _, w := range workloads {
		n = append(n, w.name)
	}
	return strings.Join(n, ", ")
}

func numCPU() int {
	if b, err := exec.Command("nproc", "--all").Output(); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			return v
		}
	}
	return 1
}

func (o *options) has(name string) bool {
	for _, w := range o.selected {
		if w.name == name {
			return true
		}
	}
	return false
}
