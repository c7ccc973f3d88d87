// Command controlscale measures the mesh control plane at scale: it starts the real
// `meshgate control` binary as a child process, applies a config of S mesh services, registers W
// workloads, opens N simulated proxies (each its own TCP and TLS connection and Discovery stream,
// half sidecars of the services, half gateways), and then times how long one registration change
// takes to reach the proxies. It reports connect time, propagation percentiles, the control
// plane's memory per connected proxy and CPU per push, prints a Markdown table and writes
// control-scale.json into -out.
//
//	controlscale -meshgate bench/out/meshgate -proxies 10000 -services 100 -workloads 1000 -rounds 5
//	controlscale -meshgate bench/out/meshgate -smoke
//
// Everything runs on 127.0.0.1 and is bounded by -deadline; the child is stopped on exit.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/push"
)

// namespace is the mesh namespace of every simulated service; gatewayService the identity all
// gateways share.
const (
	namespace      = "bench"
	gatewayService = "gateway"
)

// options are the command's flags.
type options struct {
	meshgate                       string
	out                            string
	proxies, services, workloads   int
	rounds, inflight               int
	smoke                          bool
	deadline, roundTimeout, settle time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.meshgate, "meshgate", "bench/out/meshgate", "path of the meshgate binary to run as the control plane")
	flag.StringVar(&o.out, "out", "bench/out", "directory for control-scale.json and the control plane's log")
	flag.IntVar(&o.proxies, "proxies", 10000, "simulated proxies (half sidecars, half gateways)")
	flag.IntVar(&o.services, "services", 100, "mesh services in the config")
	flag.IntVar(&o.workloads, "workloads", 1000, "workloads registered across the services before the proxies connect")
	flag.IntVar(&o.rounds, "rounds", 5, "measured registration changes")
	flag.IntVar(&o.inflight, "inflight", 500, "proxies connecting at once (between dialling and their first snapshot)")
	flag.BoolVar(&o.smoke, "smoke", false, "a run of seconds: 200 proxies, 20 services, 100 workloads, 2 rounds")
	flag.DurationVar(&o.deadline, "deadline", 5*time.Minute, "the whole run's time limit")
	flag.DurationVar(&o.roundTimeout, "round-timeout", 30*time.Second, "how long a round waits for every proxy")
	flag.DurationVar(&o.settle, "settle", time.Second, "pause after connecting and between rounds (CPU and RSS settle)")
	flag.Parse()
	if o.smoke {
		o.proxies, o.services, o.workloads, o.rounds, o.settle = 200, 20, 100, 2, 300*time.Millisecond
	}
	if o.proxies < 2 || o.services < 1 || o.workloads < 0 || o.rounds < 1 || o.inflight < 1 {
		fmt.Fprintln(os.Stderr, "controlscale: -proxies must be at least 2, -services and -rounds at least 1")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.deadline)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	res, err := run(ctx, o)
	stop()
	cancel()
	if res != nil {
		printTable(os.Stdout, res)
		if werr := writeJSON(filepath.Join(o.out, "control-scale.json"), res); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "controlscale:", err)
		os.Exit(1)
	}
}

// run does the whole benchmark; a partial result comes back with an error when a later step
// failed.
func run(ctx context.Context, o options) (*result, error) {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, err
	}
	nofile, err := raiseNoFile(uint64(o.proxies) + 4096)
	if err != nil {
		return nil, fmt.Errorf("controlscale: %w", err)
	}
	dir, err := os.MkdirTemp("", "controlscale-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	res := &result{
		Date: time.Now().UTC().Format(time.RFC3339), Cores: runtimeCores(), Proxies: o.proxies,
		Services: o.services, Workloads: o.workloads, Rounds: o.rounds, Smoke: o.smoke, NoFile: nofile,
	}
	p, err := startPlane(ctx, o.meshgate, filepath.Join(dir, "data"), filepath.Join(o.out, "control-scale-control.log"))
	if err != nil {
		return nil, err
	}
	defer p.stop()

	services := make([]string, o.services)
	for i := range services {
		services[i] = "svc-" + strconv.Itoa(i)
	}
	if err := p.apply(ctx, configDoc(services)); err != nil {
		return nil, err
	}
	certs := map[string]*tls.Certificate{}
	for _, svc := range append(slices.Clone(services), gatewayService) {
		c, err := p.sign(ctx, namespace, svc)
		if err != nil {
			return nil, err
		}
		certs[svc] = c
	}
	reg, err := newRegistrar(p, certs)
	if err != nil {
		return nil, err
	}
	defer reg.close()
	if err := reg.registerAll(ctx, services, o.workloads); err != nil {
		return nil, err
	}
	sleep(ctx, o.settle)
	if res.RSSBeforeBytes, err = p.rssBytes(); err != nil {
		return nil, err
	}

	f := newFleet(o.proxies)
	fctx, fcancel := context.WithCancel(ctx)
	defer func() {
		fcancel()
		f.close()
	}()
	if err := f.start(fctx, p, certs, services, namespace, o.inflight); err != nil {
		return res, fmt.Errorf("connecting the proxies (%d of %d had their first snapshot): %w", f.ready.Load(), o.proxies, err)
	}
	connect := make([]time.Duration, o.proxies)
	for i := range connect {
		connect[i] = time.Duration(f.first[i].Load())
	}
	res.Connect = summarize(connect, o.proxies)
	sleep(ctx, o.settle)
	if res.RSSConnectedBytes, err = p.rssBytes(); err != nil {
		return res, err
	}
	res.RSSPerProxyBytes = float64(res.RSSConnectedBytes-res.RSSBeforeBytes) / float64(o.proxies)
	res.InitialPushes = f.pushes.Load()

	var all []time.Duration
	for r := 1; r <= o.rounds; r++ {
		rr, lat, err := measureRound(ctx, o, p, reg, f, services, r)
		res.RoundResults = append(res.RoundResults, rr)
		all = append(all, lat...)
		if err != nil {
			return res, err
		}
		sleep(ctx, o.settle)
	}
	res.Propagation = summarize(all, o.proxies*o.rounds)
	var cpu time.Duration
	for _, rr := range res.RoundResults {
		cpu += time.Duration(rr.CPUms * float64(time.Millisecond))
	}
	res.CPUPerPushPerProxyUs = float64(cpu.Microseconds()) / float64(o.rounds) / float64(o.proxies)
	res.TotalPushes = f.pushes.Load()
	res.GoalMet = res.Propagation.To99ms < 1000
	return res, nil
}

// measureRound changes one registration and waits for every proxy to see it. Odd rounds register
// a marker workload in one service, even rounds deregister the previous round's.
func measureRound(ctx context.Context, o options, p *plane, reg *registrar, f *fleet, services []string, r int) (roundResult, []time.Duration, error) {
	k := (r - 1) / 2 // marker number: rounds 2k+1 and 2k+2 share it
	svc := services[k%len(services)]
	ip := fmt.Sprintf("10.255.%d.%d", k/250, k%250+1)
	present := r%2 == 1
	rd := &round{key: push.Key(push.TypeService, svc), marker: []byte(`"` + ip + `:`), present: present, seen: make([]atomic.Int64, f.n)}
	rr := roundResult{Round: r, Service: svc, Change: "register"}
	if !present {
		rr.Change = "deregister"
	}
	pushes0 := f.pushes.Load()
	cpu0, err := p.cpuTime()
	if err != nil {
		return rr, nil, err
	}
	f.cur.Store(rd)
	rd.t0 = time.Now()
	id := "marker-" + strconv.Itoa(k)
	if present {
		err = reg.register(ctx, svc, id, ip)
	} else {
		err = reg.deregister(ctx, svc, id)
	}
	if err != nil {
		return rr, nil, err
	}
	wait, cancel := context.WithTimeout(ctx, o.roundTimeout)
	defer cancel()
	for rd.count.Load() < int64(f.n) && wait.Err() == nil {
		sleep(wait, 5*time.Millisecond)
	}
	// The control plane finishes sending and takes the ACKs after the last Apply.
	sleep(ctx, o.settle)
	cpu1, err := p.cpuTime()
	if err != nil {
		return rr, nil, err
	}
	f.cur.Store(nil)
	lat := make([]time.Duration, 0, f.n)
	for i := range rd.seen {
		if v := rd.seen[i].Load(); v != 0 {
			lat = append(lat, time.Duration(v))
		}
	}
	rr.Reached = len(lat)
	rr.Latency = summarize(lat, f.n)
	rr.CPUms = float64(cpu1-cpu0) / float64(time.Millisecond)
	rr.Pushes = f.pushes.Load() - pushes0
	if rr.Reached < f.n {
		return rr, lat, fmt.Errorf("round %d: %d of %d proxies saw the change within %s", r, rr.Reached, f.n, o.roundTimeout)
	}
	return rr, lat, nil
}

// configDoc is the applied config: one listener, one edge route per service (so gateways hold
// every service), and the services with discovery.
func configDoc(services []string) string {
	var b strings.Builder
	b.WriteString("version: 1\nlisteners: [{name: web, address: \"127.0.0.1:0\"}]\nroutes:\n")
	for _, s := range services {
		fmt.Fprintf(&b, "  - {name: %s-route, match: [{path: {prefix: /%s}}], backends: [{service: %s}]}\n", s, s, s)
	}
	b.WriteString("services:\n")
	for _, s := range services {
		fmt.Fprintf(&b, "  - {name: %s, discovery: {namespace: %s}}\n", s, namespace)
	}
	return b.String()
}

// raiseNoFile raises the soft (and, when needed and allowed, the hard) limit of open files to at
// least want; the child inherits it. It returns the soft limit in force.
func raiseNoFile(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Max < want {
		next := syscall.Rlimit{Cur: want, Max: want}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < want {
		return lim.Cur, fmt.Errorf("open-file limit %d is below the %d needed; raise it (ulimit -Hn) or lower -proxies", lim.Cur, want)
	}
	return lim.Cur, nil
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

// registrar registers workloads, one connection per service identity.
type registrar struct {
	conns map[string]controlv1.RegistryClient
	close func()
}

func newRegistrar(p *plane, certs map[string]*tls.Certificate) (*registrar, error) {
	r := &registrar{conns: map[string]controlv1.RegistryClient{}}
	var closers []func() error
	r.close = func() {
		for _, c := range closers {
			_ = c()
		}
	}
	for svc, cert := range certs {
		c, err := p.dial(cert)
		if err != nil {
			r.close()
			return nil, err
		}
		closers = append(closers, c.Close)
		r.conns[svc] = controlv1.NewRegistryClient(c)
	}
	return r, nil
}

// register adds workload id of svc at ip, port 8080.
func (r *registrar) register(ctx context.Context, svc, id, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := r.conns[svc].Register(ctx, &controlv1.RegisterRequest{Workload: &controlv1.Workload{
		Id: id, Service: svc, Namespace: namespace, Version: "v1", Addresses: []string{ip},
		Ports: []*controlv1.Port{{Name: "http", Port: 8080, Protocol: "http1"}},
	}})
	if err != nil {
		return fmt.Errorf("controlscale: register %s: %w", id, err)
	}
	return nil
}

// deregister removes workload id of svc.
func (r *registrar) deregister(ctx context.Context, svc, id string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := r.conns[svc].Deregister(ctx, &controlv1.DeregisterRequest{Id: id}); err != nil {
		return fmt.Errorf("controlscale: deregister %s: %w", id, err)
	}
	return nil
}

// registerAll registers n workloads round-robin over services, 32 at a time, at addresses in
// 10.0.0.0/9.
func (r *registrar) registerAll(ctx context.Context, services []string, n int) error {
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ip := fmt.Sprintf("10.%d.%d.%d", i>>16&0x7f, i>>8&0xff, i&0xff)
			if err := r.register(ctx, services[i%len(services)], "w-"+strconv.Itoa(i), ip); err != nil {
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// writeJSON writes v indented to path.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
