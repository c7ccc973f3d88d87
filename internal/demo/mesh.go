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
	"sync/atomic"
	"syscall"
	"text/template"
	"time"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/control/store"
	"github.com/meshgate/meshgate/internal/freeport"
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
		args, err := workloadArgs(o.Self, mode, topo, i, w, cp.GRPCAddr().String(), cdir, filepath.Join(dir, "sidecars", w.instance))
		if err != nil {
			return err
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

// freePorts returns n loopback addresses with free ports, from below the ephemeral range (see
// freeport): the workloads' sidecars bind them a moment later.
func freePorts(n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		a, err := freeport.Loopback()
		if err != nil {
			return nil, err
		}
		out = append(out, a)
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
	cmds     []*exec.Cmd
	done     []chan struct{}
}

// start runs args with output to logFile, in its own process group. A process that ends before
// the mesh stops is a warning naming its log: a workload crashed (POST /orders/crash does it on
// purpose) or its sidecar could not start.
func (p *processes) start(name string, argv []string, logFile string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("up: starting %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		f.Close()
		if p.stopping.Load() {
			p.log.Info("workload process ended", "workload", name, "error", err)
		} else {
			p.log.Warn("workload process ended before the mesh stopped", "workload", name, "error", err, "log", logFile)
		}
		close(done)
	}()
	p.cmds = append(p.cmds, cmd)
	p.done = append(p.done, done)
	return nil
}

// stop sends SIGTERM to every process group and waits (SIGKILL after 15s).
func (p *processes) stop() {
	p.stopping.Store(true)
	for _, c := range p.cmds {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.After(15 * time.Second)
	for i, d := range p.done {
		select {
		case <-d:
		case <-deadline:
			_ = syscall.Kill(-p.cmds[i].Process.Pid, syscall.SIGKILL)
			<-d
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
