package demo

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/mesh/netns"
)

//go:embed mesh.yaml
var meshTemplate string

// Modes of the local mesh.
const (
	ModeAuto     = "auto"     // network namespaces when this process may create them, else loopback
	ModeNetns    = "netns"    // every workload in its own network namespace, transparent interception
	ModeLoopback = "loopback" // every workload on loopback, explicit mode
)

// MeshOptions configure the local mesh `meshgate up` runs.
type MeshOptions struct {
	// Listen is the gateway's public listener; Admin its admin API.
	Listen, Admin string
	// ControlGRPC and ControlAdmin are the control plane's proxy port and admin API (the CLI's
	// default is 127.0.0.1:15000). In netns mode the proxy port listens on the bridge address
	// with ControlGRPC's port.
	ControlGRPC, ControlAdmin string
	// Mode is ModeAuto, ModeNetns or ModeLoopback.
	Mode string
	// Self is the meshgate binary the workloads' sidecars run.
	Self string
	// Log receives the logs of the control plane and gateway.
	Log *slog.Logger
	// Out receives the instructions.
	Out io.Writer
}

// workload is one demo workload instance.
type workload struct {
	service, instance string
}

var meshWorkloads = []workload{{"web", "web"}, {"orders", "orders-1"}, {"orders", "orders-2"}, {"payments", "payments"}}

// RunMesh runs the whole local mesh until ctx ends: a control plane, the gateway on it, and the
// demo services web, orders (two replicas) and payments, each with a sidecar, in its own network
// namespace with transparent interception when possible, else on loopback in explicit mode.
func RunMesh(ctx context.Context, o MeshOptions) error {
	dir, err := os.MkdirTemp("", "meshgate-up-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	mode, why := chooseMode(o.Mode)
	if mode == "" {
		return fmt.Errorf("up: --mode %s: %s", o.Mode, why)
	}
	static, err := Start(o.Listen, o.Admin)
	if err != nil {
		return err
	}
	defer static.Close()

	var topo *topology
	grpcAddr := o.ControlGRPC
	if mode == ModeNetns {
		if topo, err = newTopology(len(meshWorkloads)); err != nil {
			return fmt.Errorf("up: network namespaces: %w", err)
		}
		defer topo.close(o.Log)
		_, port, _ := net.SplitHostPort(o.ControlGRPC)
		grpcAddr = net.JoinHostPort(topo.host.String(), port)
	}
	cdir := filepath.Join(dir, "control")
	if err := os.MkdirAll(cdir, 0o700); err != nil {
		return err
	}
	st, err := store.OpenBolt(filepath.Join(cdir, "control.db"), store.BoltOptions{})
	if err != nil {
		return err
	}
	defer st.Close()
	cp, err := control.New(control.Options{Store: st, DataDir: cdir, GRPCAddress: grpcAddr, XDSAddress: "127.0.0.1:0",
		AdminAddress: o.ControlAdmin, Log: o.Log.With("component", "control")})
	if err != nil {
		return err
	}
	cp.Start()
	defer cp.Close()
	var cfg bytes.Buffer
	if err := template.Must(template.New("mesh").Parse(meshTemplate)).Execute(&cfg, static.Addrs); err != nil {
		return err
	}
	if _, err := cp.Apply(ctx, "meshgate-up.yaml", "meshgate up", "the built-in mesh", cfg.Bytes(), nil); err != nil {
		return fmt.Errorf("up: the built-in config: %w", err)
	}
	token, err := os.ReadFile(filepath.Join(cdir, control.JoinTokenFile))
	if err != nil {
		return err
	}
	gw, err := gateway.StartControlled(gateway.ControlledOptions{
		Control: cp.GRPCAddr().String(), ControlCA: filepath.Join(cdir, control.BundleFile), JoinToken: strings.TrimSpace(string(token)),
		DataDir: filepath.Join(dir, "gateway"), Name: "gateway", Namespace: "shop",
		Admin: config.Admin{Address: o.Admin}, AccessLog: config.AccessLog{Path: "stdout"}, Log: o.Log.With("component", "gateway"),
	})
	if err != nil {
		return err
	}
	defer gw.Close(context.Background())
	adm := admin.New(gw.Gateway, admin.Options{Address: o.Admin, ConfigFromControl: true}, o.Log.With("component", "admin"))
	if err := adm.Start(); err != nil {
		return fmt.Errorf("up: admin listener: %w", err)
	}
	defer adm.Shutdown(context.Background())

	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return err
	}
	procs := &processes{log: o.Log}
	defer procs.stop()
	for i, w := range meshWorkloads {
		args := func() ([]string, error) {
			// Built anew for each start: on loopback, a restart gets fresh ports.
			return workloadArgs(o.Self, mode, topo, i, w, cp.GRPCAddr().String(), cdir, filepath.Join(dir, "sidecars", w.instance))
		}
		if err := procs.start(w.instance, args, filepath.Join(logs, w.instance+".log")); err != nil {
			return err
		}
	}
	base := "http://" + o.Listen
	if err := waitServes(ctx, base+"/shop/order", 60*time.Second); err != nil {
		fmt.Fprintf(o.Out, "meshgate up: the mesh did not answer /shop/order yet (%v); logs are in %s\n", err, logs)
		for _, w := range meshWorkloads {
			fmt.Fprintf(o.Out, "  %s: %s\n", w.instance, lastLines(filepath.Join(logs, w.instance+".log"), 5))
		}
	}
	fmt.Fprintln(o.Out, instructions(mode, why, base, o.Admin, o.ControlAdmin, logs))
	<-ctx.Done()
	return nil
}

// chooseMode returns the mode to run in and, for loopback, why.
func chooseMode(want string) (string, string) {
	err := netns.Available()
	if err == nil {
		if _, lerr := exec.LookPath("ip"); lerr != nil {
			err = errors.New("the ip command (iproute2) is not installed")
		}
	}
	switch want {
	case ModeLoopback:
		return ModeLoopback, "asked for with --mode loopback"
	case ModeNetns:
		if err != nil {
			return "", err.Error()
		}
		return ModeNetns, ""
	}
	if err != nil {
		return ModeLoopback, err.Error()
	}
	return ModeNetns, ""
}

// workloadArgs is the command line that runs workload i: its sidecar, which runs the demo
// service once ready.
func workloadArgs(self, mode string, topo *topology, i int, w workload, controlAddr, cdir, data string) ([]string, error) {
	sc := []string{self, "sidecar", "--control", controlAddr, "--control-ca", filepath.Join(cdir, control.BundleFile),
		"--join-token-file", filepath.Join(cdir, control.JoinTokenFile), "--data-dir", data,
		"--service", w.service, "--namespace", "shop", "--drain-delay", "1s", "--log-level", "warn"}
	app := []string{self, "demo-service", "--service", w.service, "--instance", w.instance}
	if mode == ModeNetns {
		sc = append([]string{"ip", "netns", "exec", topo.names[i]}, sc...)
		sc = append(sc, "--transparent", "--address", topo.addrs[i].String(), "--port", "http=8080/http1")
		app = append(app, "--listen", "127.0.0.1:8080")
		return append(append(sc, "--"), app...), nil
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	in, out, adm, appPort := ports[0], ports[1], ports[2], ports[3]
	sc = append(sc, "--address", "127.0.0.1", "--inbound", in, "--outbound", out, "--admin", adm,
		"--port", "http="+strings.TrimPrefix(appPort, "127.0.0.1:")+"/http1")
	app = append(app, "--listen", appPort, "--proxy", "http://"+out)
	return append(append(sc, "--"), app...), nil
}

// freePorts returns n loopback addresses with free ports.
func freePorts(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// waitServes polls url until it answers 200 or d passes.
func waitServes(ctx context.Context, url string, d time.Duration) error {
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("last answer: %s", last)
}

// instructions tells a user what to try.
func instructions(mode, why, base, adminAddr, controlAdmin, logs string) string {
	how := "each workload runs in its own network namespace; its sidecar intercepts its traffic (nftables)"
	if mode == ModeLoopback {
		how = "workloads run on loopback in explicit mode (they call the mesh through their sidecar's port),\n  because network namespaces are not available here: " + why
	}
	return strings.Join([]string{
		"meshgate is up: a control plane, the gateway on " + base + ", and the services web, orders (2 replicas)",
		"and payments, each with a sidecar; " + how + ".",
		"",
		"Try:",
		"  curl " + base + "/shop/order              # gateway → web → orders → payments: mutual TLS between every hop",
		"  curl -i " + base + "/payments             # refused by identity: payments admits only orders (403 authz_denied)",
		"  curl -X POST " + base + "/orders/crash    # stop one orders replica ...",
		"  curl " + base + "/shop/order              # ... and calls fail over to the other (see \"instance\")",
		"  curl -i " + base + "/users                # an edge route to static services",
		"",
		"See inside (every hop, with the consumer the edge authenticated):",
		"  curl -i -H 'X-API-Key: acme-key' " + base + "/shop/order   # as consumer acme; note X-Request-Id",
		"  meshgate explain REQUEST-ID --server http://" + controlAdmin + "   # each hop: route, policies, attempts, timings",
		"  meshgate tap --service orders --server http://" + controlAdmin + "  # live requests to orders",
		"  meshgate top --server http://" + controlAdmin + "                   # live table of the mesh's edges",
		"  meshgate impact --service orders --server http://" + controlAdmin + "  # which consumers orders' failures hit",
		"  meshgate control status --server http://" + controlAdmin + "   # workloads, proxies and certificates",
		"",
		"Gateway admin: http://" + adminAddr + "/metrics   Control plane admin: http://" + controlAdmin + "   Logs: " + logs,
		"Press Ctrl-C to stop.",
	}, "\n")
}

// processes are the workload processes the mesh started.
type processes struct {
	log      *slog.Logger
	stopping atomic.Bool
	procs    []*process
}

// process is one workload process and the ones that replaced it.
type process struct {
	mu   sync.Mutex
	cmd  *exec.Cmd     // the one running now
	done chan struct{} // closed when the workload is over for good
}

// Startup restarts: a workload process that ends this soon after it started (its sidecar could
// not bind a port another process took meanwhile, say) is started again, a few times, with a new
// command line. One that ends later (POST /orders/crash) stays down, as the demo intends.
const (
	startupWindow = 10 * time.Second
	maxRestarts   = 3
)

// start runs the command args returns, with output to logFile, in its own process group.
func (p *processes) start(name string, args func() ([]string, error), logFile string) error {
	pr := &process{done: make(chan struct{})}
	cmd, f, err := p.spawn(name, args, logFile)
	if err != nil {
		return err
	}
	pr.cmd = cmd
	p.procs = append(p.procs, pr)
	go p.supervise(name, pr, f, args, logFile)
	return nil
}

// spawn starts one process of a workload.
func (p *processes) spawn(name string, args func() ([]string, error), logFile string) (*exec.Cmd, *os.File, error) {
	argv, err := args()
	if err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("up: starting %s: %w", name, err)
	}
	return cmd, f, nil
}

// supervise waits for the workload's process, and starts it again when it ended during startup.
func (p *processes) supervise(name string, pr *process, f *os.File, args func() ([]string, error), logFile string) {
	defer close(pr.done)
	for restarts := 0; ; restarts++ {
		pr.mu.Lock()
		cmd := pr.cmd
		pr.mu.Unlock()
		started := time.Now()
		err := cmd.Wait()
		f.Close()
		if p.stopping.Load() {
			p.log.Info("workload process ended", "workload", name, "error", err)
			return
		}
		p.log.Warn("workload process ended before the mesh stopped", "workload", name, "error", err, "log", logFile)
		// What is left of its process group (the workload its sidecar started) goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if time.Since(started) > startupWindow || restarts >= maxRestarts {
			return
		}
		pr.mu.Lock()
		if p.stopping.Load() {
			pr.mu.Unlock()
			return
		}
		next, nf, serr := p.spawn(name, args, logFile)
		if serr != nil {
			pr.mu.Unlock()
			p.log.Warn("workload could not be started again", "workload", name, "error", serr)
			return
		}
		pr.cmd, f = next, nf
		pr.mu.Unlock()
		p.log.Warn("workload process started again", "workload", name, "restarts", restarts+1)
	}
}

// stop sends SIGTERM to every process group and waits (SIGKILL after 15s).
func (p *processes) stop() {
	p.stopping.Store(true)
	signal := func(pr *process, sig syscall.Signal) {
		pr.mu.Lock()
		_ = syscall.Kill(-pr.cmd.Process.Pid, sig)
		pr.mu.Unlock()
	}
	for _, pr := range p.procs {
		signal(pr, syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for _, pr := range p.procs {
		select {
		case <-pr.done:
		case <-deadline:
			signal(pr, syscall.SIGKILL)
			<-pr.done
		}
	}
}

// lastLines returns the last n lines of the file at path, joined with " | ", or why it cannot.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}
