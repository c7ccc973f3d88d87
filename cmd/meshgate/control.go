package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/control"
	"github.com/meshgate/meshgate/internal/control/store"
)

// controlFlags are the settings of `meshgate control`.
type controlFlags struct {
	dataDir, trustDomain, grpcAddr, xdsAddr, adminAddr, adminTokenEnv, logLevel string
	etcd                                                                        []string
	etcdPrefix                                                                  string
	certTTL, maxCertTTL, workloadTTL, rootPropagation                           time.Duration
	caCert, caKey, caChain                                                      string
	servingNames                                                                []string
	pprof                                                                       bool
}

func newControlCommand() *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "control --data-dir DIR",
		Short: "Run the mesh control plane: registry, config store, CA, config push and xDS",
		Long: `Run the mesh control plane. With only --data-dir it keeps everything in one embedded
database file (DIR/control.db); with --etcd it shares state with other replicas through etcd and
elects a leader among them. On first start it generates the mesh's root CA (or uses the
intermediate given with --ca-cert, --ca-key and --ca-chain), writes the trust bundle proxies start
from to DIR/bundle.pem and a join token granting every identity to DIR/join-token.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runControl(cmd.Context(), f, nil) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "meshgate-data", "directory for the embedded store, bundle.pem and join-token")
	fl.StringVar(&f.trustDomain, "trust-domain", "mesh.local", "SPIFFE trust domain of the mesh")
	fl.StringVar(&f.grpcAddr, "listen", "127.0.0.1:15012", "address proxies connect to (gRPC over TLS)")
	fl.StringVar(&f.xdsAddr, "xds-listen", "127.0.0.1:15010", `address serving xDS to Envoy and proxyless gRPC clients, or "off"`)
	fl.StringVar(&f.adminAddr, "admin", "127.0.0.1:15000", `admin API address for the CLI, or "off"`)
	fl.StringVar(&f.adminTokenEnv, "admin-token-env", "", "environment variable holding the admin API's bearer token (required off loopback)")
	fl.StringSliceVar(&f.etcd, "etcd", nil, "etcd endpoints (comma-separated); default: the embedded store")
	fl.StringVar(&f.etcdPrefix, "etcd-prefix", "/meshgate/", "key prefix in etcd")
	fl.DurationVar(&f.certTTL, "cert-ttl", 24*time.Hour, "default workload certificate lifetime (at least 1m); proxies renew at half-life")
	fl.DurationVar(&f.maxCertTTL, "max-cert-ttl", 7*24*time.Hour, "longest certificate lifetime a proxy may ask for; the old root stays trusted this long after a rotation")
	fl.DurationVar(&f.workloadTTL, "workload-ttl", 30*time.Second, "how long a registration lives without a heartbeat")
	fl.DurationVar(&f.rootPropagation, "root-propagation", time.Minute, "during a root rotation, how long the new root is only distributed before it signs")
	fl.StringVar(&f.caCert, "ca-cert", "", "intermediate CA certificate (PEM) to sign with instead of a generated root")
	fl.StringVar(&f.caKey, "ca-key", "", "the intermediate CA's private key (PEM)")
	fl.StringVar(&f.caChain, "ca-chain", "", "the intermediate's chain up to the root (PEM)")
	fl.StringSliceVar(&f.servingNames, "serving-name", nil, "extra DNS names or IPs for the control plane's certificate")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.BoolVar(&f.pprof, "pprof", false, "serve Go's /debug/pprof handlers on the admin API")
	cmd.AddCommand(newControlStatusCommand(), newControlTokenCommand(), newControlRotateCommand(), newControlRevokeCommand())
	return cmd
}

// runControl runs a control plane until a signal or ctx ends it; ready (when not nil) is called
// once it serves.
func runControl(ctx context.Context, f controlFlags, ready func(*control.Server)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := newLogger(f.logLevel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var st store.Store
	if len(f.etcd) > 0 {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		st, err = store.OpenEtcd(octx, store.EtcdOptions{Endpoints: f.etcd, Prefix: f.etcdPrefix, Registerer: reg})
		cancel()
	} else {
		st, err = store.OpenBolt(filepath.Join(f.dataDir, "control.db"), store.BoltOptions{Registerer: reg})
	}
	if err != nil {
		return err
	}
	defer st.Close()
	opts := control.Options{
		Store: st, DataDir: f.dataDir, TrustDomain: f.trustDomain, CertTTL: f.certTTL, MaxCertTTL: f.maxCertTTL,
		WorkloadTTL: f.workloadTTL, RootPropagation: f.rootPropagation,
		GRPCAddress: f.grpcAddr, XDSAddress: f.xdsAddr, AdminAddress: f.adminAddr,
		ServingNames: f.servingNames, Pprof: f.pprof, Metrics: reg, Log: log.With("component", "control"),
	}
	if f.adminTokenEnv != "" {
		tok := os.Getenv(f.adminTokenEnv)
		if len(tok) < 16 {
			return fmt.Errorf("admin API: environment variable %s must hold a token of at least 16 characters", f.adminTokenEnv)
		}
		opts.AdminToken = tok
	}
	if f.caCert != "" || f.caKey != "" || f.caChain != "" {
		if f.caCert == "" || f.caKey == "" || f.caChain == "" {
			return fmt.Errorf("an intermediate CA needs all of --ca-cert, --ca-key and --ca-chain")
		}
		opts.Intermediate = &control.IntermediateFiles{Cert: f.caCert, Key: f.caKey, Chain: f.caChain}
	}
	srv, err := control.New(opts)
	if err != nil {
		return err
	}
	srv.Start()
	defer srv.Close()
	fmt.Fprintf(os.Stderr, "meshgate control: proxies connect to %s (trust bundle %s, join token %s); admin API %v\n",
		srv.GRPCAddr(), filepath.Join(f.dataDir, control.BundleFile), filepath.Join(f.dataDir, control.JoinTokenFile), srv.AdminAddr())
	if ready != nil {
		ready(srv)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-ctx.Done():
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	}
	return nil
}

func newControlStatusCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the control plane's state: leader, versions, connected proxies with their ACK/NACK state, CA rotation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st control.Status
			if err := c.getJSON(cmd.Context(), "/v1/status", &st); err != nil {
				return err
			}
			printStatus(os.Stdout, &st)
			return nil
		},
	}
	c.flags(cmd)
	return cmd
}

func newControlTokenCommand() *cobra.Command {
	var c adminClient
	var req control.TokenRequest
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens",
	}
	create := &cobra.Command{
		Use:   "create --namespace NS --service SVC [--ttl 24h]",
		Short: "Create a join token granting identities of a namespace and service (\"*\" for any); it is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp control.TokenResponse
			if err := c.postJSON(cmd.Context(), "/v1/tokens", req, &resp); err != nil {
				return err
			}
			fmt.Println(resp.Token)
			exp := "never"
			if !resp.Record.Expires.IsZero() {
				exp = resp.Record.Expires.Format(time.RFC3339)
			}
			fmt.Fprintf(os.Stderr, "token %s grants %s, expires %s\n", resp.Record.ID, resp.Record.Grant, exp)
			return nil
		},
	}
	create.Flags().StringVar(&req.Namespace, "namespace", "default", `namespace granted, or "*"`)
	create.Flags().StringVar(&req.Service, "service", "", `service granted, or "*"`)
	create.Flags().StringVar(&req.TTL, "ttl", "24h", `token lifetime; "" never expires`)
	create.Flags().StringVar(&req.Description, "description", "", "what the token is for")
	_ = create.MarkFlagRequired("service")
	c.flags(create)
	cmd.AddCommand(create)
	return cmd
}

func newControlRevokeCommand() *cobra.Command {
	var c adminClient
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke SPIFFE-ID",
		Short: "Revoke a workload identity: every certificate issued for it until now is refused by the control plane and by every proxy",
		Long: `Revokes a workload identity (for a leaked key): its certificates issued until now are refused by
the control plane and, once pushed, by every proxy. Its proxies obtain new certificates with their
join token; revoke the token too (a new one with "meshgate control token create") if it leaked.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]any
			if err := c.postJSON(cmd.Context(), "/v1/revocations", map[string]string{"identity": args[0], "reason": reason}, &out); err != nil {
				return err
			}
			fmt.Printf("revoked %v: certificates issued before %v are refused\n", out["identity"], out["before"])
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the revocation)")
	c.flags(cmd)
	return cmd
}

func newControlRotateCommand() *cobra.Command {
	var c adminClient
	cmd := &cobra.Command{
		Use:   "rotate-root",
		Short: "Begin a root CA rotation: the new root is distributed, then signs, then the old one leaves the bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out map[string]any
			if err := c.postJSON(cmd.Context(), "/v1/ca/rotate", struct{}{}, &out); err != nil {
				return err
			}
			fmt.Println(strings.TrimSpace(fmt.Sprint(out)))
			return nil
		},
	}
	c.flags(cmd)
	return cmd
}
