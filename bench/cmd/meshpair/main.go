// Command meshpair measures meshgate's mesh data path: what a pair of sidecars adds to a call.
//
// On loopback it starts one origin (nginx, "ok\n" on /), `meshgate control`, a server-side
// sidecar (service "server") in front of the origin and a client-side sidecar (service "client")
// with a port bound to server.bench, and then measures two paths side by side, in interleaved
// rounds:
//
//	direct: load generator → origin
//	mesh:   load generator → client sidecar (bound upstream port) → mutual TLS, HTTP/2 →
//	        server sidecar → origin
//
// Each round runs bench/cmd/loadgen at a fixed rate (open loop, latency from each request's
// scheduled time) on each path, and a closed-loop wrk run on each path for the maximum
// throughput. It reports latency percentiles and the latency the mesh adds, CPU time per request
// of each sidecar (utime+stime from /proc/PID/stat), the sidecars' memory idle and under load,
// and the mesh/direct throughput ratio. It prints Markdown tables and writes mesh-pair.json.
//
//	meshpair -meshgate bench/out/meshgate -loadgen bench/out/loadgen -out bench/out
//	meshpair -smoke ...
//
// Everything runs on 127.0.0.1; every child is stopped on exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
)

// options are the command's flags.
type options struct {
	meshgate, loadgen, out string
	commit                 string
	rate, conns, wrkConns  int
	rounds                 int
	duration, closedDur    time.Duration
	warmup, settle         time.Duration
	sidecarCPU, loadCPU    int
	gomaxprocs             int
	nice                   int
	smoke                  bool
	deadline               time.Duration
}

// exit statuses: 1 when a run failed or saw errors, 2 when the setup failed.
const (
	exitRunFailed   = 1
	exitSetupFailed = 2
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "meshpair:", err)
		os.Exit(exitSetupFailed)
	}
	if err := procs.RaisePriority(o.nice); err != nil {
		fmt.Fprintln(os.Stderr, "meshpair: priority not raised:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.deadline)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	res, code, err := run(ctx, o)
	stop()
	cancel()
	if res != nil && len(res.Runs) > 0 {
		md := markdown(res)
		fmt.Print(md)
		werr := errors.Join(writeJSON(filepath.Join(o.out, "mesh-pair.json"), res),
			os.WriteFile(filepath.Join(o.out, "mesh-pair.md"), []byte(md), 0o644))
		if werr != nil && err == nil {
			err, code = werr, exitRunFailed
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshpair:", err)
		os.Exit(code)
	}
}

// parseFlags reads the flags; -smoke changes the defaults of those not given.
func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("meshpair", flag.ContinueOnError)
	fs.StringVar(&o.meshgate, "meshgate", "bench/out/meshgate", "the meshgate binary (control plane and sidecars)")
	fs.StringVar(&o.loadgen, "loadgen", "bench/out/loadgen", "the open-loop load generator (bench/cmd/loadgen)")
	fs.StringVar(&o.commit, "commit", "", "the git commit meshgate was built from, for the report (default: from the build info)")
	fs.StringVar(&o.out, "out", "bench/out", "output directory: mesh-pair.json, mesh-pair.md, mesh-pair/ (configs, logs)")
	fs.IntVar(&o.rate, "rate", 1000, "requests per second of the fixed-rate runs")
	fs.IntVar(&o.conns, "conns", 16, "keep-alive connections of the fixed-rate runs")
	fs.IntVar(&o.wrkConns, "wrk-conns", 64, "connections of the closed-loop wrk runs")
	fs.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (each: both paths at the fixed rate, then both closed-loop); medians are reported")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each fixed-rate run")
	fs.DurationVar(&o.closedDur, "closed-duration", 5*time.Second, "length of each closed-loop run (whole seconds)")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "fixed-rate warm-up of each path before the rounds (0: none)")
	fs.DurationVar(&o.settle, "settle", time.Second, "pause after the sidecars are ready before idle memory is read")
	fs.IntVar(&o.sidecarCPU, "sidecar-cpu", 0, "core both sidecars are pinned to")
	fs.IntVar(&o.loadCPU, "load-cpu", 1, "core of the origin, the control plane and the load generators")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 1, "GOMAXPROCS of each sidecar")
	fs.IntVar(&o.nice, "nice", -10, "nice value of the benchmark's processes, in a scheduling group of their own (0: leave priority alone; negative needs root)")
	fs.BoolVar(&o.smoke, "smoke", false, "a run of seconds (CI): 1 round, 1 s runs, no warm-up, priority left alone")
	fs.DurationVar(&o.deadline, "deadline", 15*time.Minute, "the whole run's time limit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.smoke {
		for name, v := range map[string]string{"rounds": "1", "duration": "1s", "closed-duration": "1s", "warmup": "0s", "settle": "300ms", "nice": "0"} {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	if n := nproc(); n < 2 && !set["load-cpu"] {
		o.loadCPU = 0
	}
	switch {
	case o.rate < 1 || o.conns < 1 || o.wrkConns < 1 || o.rounds < 1 || o.gomaxprocs < 1:
		return nil, errors.New("-rate, -conns, -wrk-conns, -rounds and -gomaxprocs must be positive")
	case o.duration < time.Second || o.closedDur < time.Second:
		return nil, errors.New("-duration and -closed-duration must be at least 1s")
	case o.nice < -20 || o.nice > 19:
		return nil, errors.New("-nice must be -20..19")
	}
	if o.nice < 0 && os.Geteuid() != 0 {
		o.nice = 0
	}
	return o, nil
}

// run starts the topology, measures and stops everything. It returns the (possibly partial)
// result and the exit status for an error.
func run(ctx context.Context, o *options) (*result, int, error) {
	dir, err := filepath.Abs(filepath.Join(o.out, "mesh-pair"))
	if err != nil {
		return nil, exitSetupFailed, err
	}
	_ = os.RemoveAll(dir) // the control plane's and sidecars' data of an earlier run
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, exitSetupFailed, err
	}
	ps := procs.NewGroup(filepath.Join(o.out, "mesh-pair.pids"), 5*time.Second)
	defer ps.StopAll()
	res := &result{Meta: collectMeta(o)}

	t, err := startTopology(ctx, o, ps, dir)
	if err != nil {
		return res, exitSetupFailed, err
	}
	sleep(ctx, o.settle)
	if res.Idle, err = readMemories(t); err != nil {
		return res, exitSetupFailed, err
	}
	if err := t.checkPaths(ctx); err != nil {
		return res, exitSetupFailed, err
	}

	var runErr error
	record := func(r runResult, err error) {
		res.Runs = append(res.Runs, r)
		if err == nil && r.Errors > 0 {
			err = fmt.Errorf("%s %s round %d: %d errors (first: %s)", r.Kind, r.Path, r.Round, r.Errors, r.FirstError)
		}
		runErr = errors.Join(runErr, err)
	}
	if o.warmup > 0 {
		for _, p := range []string{pathDirect, pathMesh} {
			record(measure(ctx, o, t, kindFixed, p, 0, o.warmup))
		}
	}
	if res.Warm, err = readMemories(t); err != nil {
		return res, exitRunFailed, err
	}
	for round := 1; round <= o.rounds && ctx.Err() == nil; round++ {
		// Alternate which path goes first, so that drift over a round affects both alike.
		order := []string{pathDirect, pathMesh}
		if round%2 == 0 {
			order = []string{pathMesh, pathDirect}
		}
		for _, p := range order {
			record(measure(ctx, o, t, kindFixed, p, round, o.duration))
		}
		for _, p := range order {
			record(measure(ctx, o, t, kindClosed, p, round, o.closedDur))
		}
		if err := t.alive(); err != nil {
			runErr = errors.Join(runErr, err)
			break
		}
	}
	if res.After, err = readMemories(t); err != nil {
		runErr = errors.Join(runErr, err)
	}
	summarize(res)
	if err := ctx.Err(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("interrupted: %w", err))
	}
	if runErr != nil {
		return res, exitRunFailed, runErr
	}
	return res, 0, nil
}

// readMemories reads the memory of both sidecars and the control plane.
func readMemories(t *topology) (map[string]procs.Memory, error) {
	out := map[string]procs.Memory{}
	for name, p := range map[string]*procs.Proc{"client_sidecar": t.client, "server_sidecar": t.server, "control": t.control} {
		m, err := procs.ReadMemory(p.PID())
		if err != nil {
			return nil, fmt.Errorf("meshpair: memory of %s: %w", p.Name(), err)
		}
		out[name] = m
	}
	return out, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
