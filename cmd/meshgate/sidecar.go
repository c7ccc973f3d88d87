package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/mesh/sidecar"
	"github.com/meshgate/meshgate/internal/netaddr"
	"github.com/meshgate/meshgate/internal/observe/metrics"
)

func newSidecarCommand() *cobra.Command {
	var (
		o                                       sidecar.Options
		c                                       sidecar.Control
		ports, upstreams, excludes              []string
		tokenFile, adminAddr, logLevel, dnsAddr string
		transparent, passthrough                bool
		mark                                    uint32
		drainDelay, drainTimeout                time.Duration
	)
	cmd := &cobra.Command{
		Use:   "sidecar --control ADDR --control-ca FILE --service NAME --port NAME=PORT[/PROTO]... [-- COMMAND ARGS...]",
		Short: "Run the mesh proxy beside one workload: inbound mutual TLS and authorization, outbound discovery, balancing and resilience",
		Long: `Runs the mesh proxy beside one workload. Peers call the workload through the inbound port
(mutual TLS with workload identities); the workload calls mesh services through the outbound port:
explicitly as http://SERVICE.NAMESPACE.mesh with 127.0.0.1:15001 as its HTTP proxy address (or a
port bound with --upstream), or transparently with --transparent, where nftables rules in the
workload's network namespace send its TCP through the sidecar and SERVICE.NAMESPACE.mesh resolves
to a virtual IP.

With a COMMAND after "--", the sidecar starts it once it is ready and stops when it exits, with
its exit code (a job that ends ends its sidecar); SIGTERM drains the sidecar, then stops the
command.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			if adminAddr != "off" && !netaddr.IsLoopbackAddr(adminAddr) {
				return fmt.Errorf("--admin %s: a sidecar serves its admin API on loopback only", adminAddr)
			}
			for _, p := range ports {
				port, err := sidecar.ParsePort(p)
				if err != nil {
					return err
				}
				o.Ports = append(o.Ports, port)
			}
			o.Upstreams = map[string]string{}
			for _, u := range upstreams {
				name, addr, ok := strings.Cut(u, "=")
				if !ok {
					return fmt.Errorf("--upstream %q: want SERVICE=HOST:PORT", u)
				}
				o.Upstreams[name] = addr
			}
			c.JoinToken = strings.TrimSpace(os.Getenv("MESHGATE_JOIN_TOKEN"))
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("join token: %w", err)
				}
				c.JoinToken = strings.TrimSpace(string(b))
			}
			o.DrainDelay, o.DrainTimeout, o.Log = drainDelay, drainTimeout, log
			var onTargets func([]string)
			if transparent {
				var ex []netip.Prefix
				for _, e := range excludes {
					p, err := netaddr.ParsePrefix(e)
					if err != nil {
						return fmt.Errorf("--exclude %q: %w", e, err)
					}
					ex = append(ex, p)
				}
				ic, err := sidecar.Intercept(&o, c.Address, sidecar.InterceptOptions{
					Mark: mark, DNS: dnsAddr, Exclude: ex, Passthrough: passthrough, Log: log.With("component", "intercept"),
				})
				if err != nil {
					return err
				}
				defer ic.Close()
				onTargets = ic.Targets
			}
			reg := metrics.New()
			sc, err := sidecar.New(o, c, reg, onTargets)
			if err != nil {
				return err
			}
			if err := sc.Start(cmd.Context()); err != nil {
				return err
			}
			quit := make(chan os.Signal, 2)
			signal.Notify(quit, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(quit)
			if adminAddr != "off" {
				adm := admin.New(sc.Gateway(), admin.Options{Address: adminAddr, Ready: sc.ReadyErr, ConfigFromControl: true,
					Handlers: map[string]http.Handler{"POST /quitquitquit": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
						// A job run outside the sidecar tells it that it is done.
						w.WriteHeader(http.StatusAccepted)
						quit <- syscall.SIGTERM
					})}}, log.With("component", "admin"))
				if err := adm.Start(); err != nil {
					_ = sc.Close()
					return fmt.Errorf("admin listener: %w", err)
				}
				defer adm.Shutdown(context.Background())
			}
			if len(args) > 0 {
				code, err := sc.RunWorkload(args, quit)
				if err != nil {
					log.Error("sidecar stopped with an error", "error", err)
				}
				if code != 0 {
					return exitCode(code)
				}
				return nil
			}
			sig := <-quit
			log.Info("shutting down", "signal", sig.String())
			sc.Drain(context.Background())
			if err := sc.Close(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&c.Address, "control", "", "control plane address (host:port). Required")
	fl.StringVar(&c.CA, "control-ca", "", "the control plane's trust bundle (its DATA-DIR/bundle.pem) for the first contact")
	fl.StringVar(&tokenFile, "join-token-file", "", "file holding the join token (or $MESHGATE_JOIN_TOKEN)")
	fl.StringVar(&c.DataDir, "data-dir", "meshgate-sidecar", "where the key, certificate and last good config are kept")
	fl.StringVar(&c.TrustDomain, "trust-domain", "mesh.local", "the mesh's trust domain")
	fl.StringVar(&o.Service, "service", "", "the workload's mesh service. Required")
	fl.StringVar(&o.Namespace, "namespace", "default", "the workload's namespace")
	fl.StringArrayVar(&ports, "port", nil, "a workload port: NAME=PORT[/http1|http2|grpc|tcp] (repeatable; at least one)")
	fl.StringVar(&o.AppHost, "app-host", "127.0.0.1", "where the workload listens, as the sidecar sees it")
	fl.StringSliceVar(&o.Addresses, "address", nil, "the address(es) peers reach this workload at (default: the host's non-loopback addresses)")
	fl.StringVar(&o.Inbound, "inbound", sidecar.DefaultInbound, "inbound (mutual TLS) listen address")
	fl.StringVar(&o.Outbound, "outbound", sidecar.DefaultOutbound, "outbound listen address for the workload's calls")
	fl.StringArrayVar(&upstreams, "upstream", nil, "bind a local address to one mesh service, any protocol: SERVICE=HOST:PORT (repeatable)")
	fl.StringSliceVar(&o.Calls, "calls", nil, "the services the workload calls (default: every mesh service)")
	fl.BoolVar(&transparent, "transparent", false, "intercept the workload's TCP with nftables in this network namespace (needs root or CAP_NET_ADMIN)")
	fl.BoolVar(&passthrough, "passthrough", false, "with --transparent: let calls to addresses outside the mesh through unproxied (default: refuse them)")
	fl.StringSliceVar(&excludes, "exclude", nil, "with --transparent: destinations (CIDRs) never intercepted")
	fl.Uint32Var(&mark, "mark", sidecar.DefaultMark, "with --transparent: the SO_MARK of the sidecar's own sockets")
	fl.StringVar(&dnsAddr, "dns", "127.0.0.1:15053", "with --transparent: where SERVICE.NAMESPACE.mesh names are answered")
	fl.StringVar(&o.AccessLog, "access-log", "off", `access log: "off", "stdout", "stderr" or a file`)
	fl.StringVar(&adminAddr, "admin", sidecar.DefaultAdmin, `admin API address (loopback: /ready, /metrics, POST /quitquitquit), or "off"`)
	fl.DurationVar(&drainDelay, "drain-delay", 2*time.Second, "after SIGTERM, how long to keep serving while callers learn the workload is draining")
	fl.DurationVar(&drainTimeout, "drain-timeout", 20*time.Second, "how long in-flight requests (and the workload's exit) may take at shutdown")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	_ = cmd.MarkFlagRequired("control")
	_ = cmd.MarkFlagRequired("service")
	return cmd
}
