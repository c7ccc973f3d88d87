package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/demo"
)

func newUpCommand() *cobra.Command {
	var o demo.MeshOptions
	var logLevel string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole mesh locally: a control plane, the gateway, and three demo services with sidecars",
		Long: `Runs the whole mesh on this machine with a built-in config: the control plane, the gateway on it,
and the demo services web, orders (two replicas) and payments, each with a sidecar. As root, every
workload runs in its own network namespace with transparent interception (nftables); otherwise
the workloads run on loopback in explicit mode, and up says why. It prints what to try.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			for _, a := range []string{o.Listen, o.Admin, o.ControlAdmin} {
				ln, err := net.Listen("tcp", a)
				if err != nil {
					return fmt.Errorf("%s is taken (%v); choose other ports with --listen, --admin and --control-admin", a, err)
				}
				_ = ln.Close()
			}
			if o.Self, err = os.Executable(); err != nil {
				return err
			}
			o.Log, o.Out = log, cmd.ErrOrStderr()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return demo.RunMesh(ctx, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "gateway listener address")
	fl.StringVar(&o.Admin, "admin", "127.0.0.1:9901", "gateway admin API address")
	fl.StringVar(&o.ControlGRPC, "control", "127.0.0.1:15012", "control plane address for proxies (in netns mode its port, on the mesh bridge)")
	fl.StringVar(&o.ControlAdmin, "control-admin", "127.0.0.1:15000", "control plane admin API address (meshgate apply, get, control status)")
	fl.StringVar(&o.Mode, "mode", demo.ModeAuto, `"auto" (network namespaces when possible), "netns" or "loopback"`)
	fl.StringVar(&logLevel, "log-level", "warn", "log level for meshgate's own logs")
	return cmd
}

func newDemoServiceCommand() *cobra.Command {
	var o demo.ServiceOptions
	cmd := &cobra.Command{
		Use:    "demo-service",
		Short:  "One demo mesh service of meshgate up (web, orders or payments)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger("info")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return demo.RunService(ctx, o, log)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Service, "service", "", "web, orders or payments")
	fl.StringVar(&o.Instance, "instance", "", "the replica's name")
	fl.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "listen address")
	fl.StringVar(&o.Proxy, "proxy", "", "the sidecar's outbound address as an HTTP proxy URL (explicit mode)")
	return cmd
}
