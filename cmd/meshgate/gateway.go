package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/audit"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
)

func newGatewayCommand() *cobra.Command {
	var cfgPath, logLevel string
	var cf gatewayControlFlags
	cmd := &cobra.Command{
		Use:   "gateway (--config FILE | --control ADDR --control-ca FILE)",
		Short: "Run the edge gateway on a config file (reloaded on change, SIGHUP or PUT /config) or on the control plane's config",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			switch {
			case (cfgPath == "") == (cf.control == ""):
				return errors.New("give exactly one of --config FILE or --control ADDR")
			case cf.control != "":
				return runGatewayControl(cmd.Context(), cf, log)
			}
			return runGateway(cmd.Context(), cfgPath, log, nil)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&cfgPath, "config", "c", "", "config file (YAML)")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&cf.control, "control", "", "control plane address (host:port): take config and endpoints from it instead of a file")
	fl.StringVar(&cf.controlCA, "control-ca", "", "with --control: the control plane's trust bundle (its DATA-DIR/bundle.pem) for the first contact")
	fl.StringVar(&cf.tokenFile, "join-token-file", "", "with --control: file holding the join token (or $MESHGATE_JOIN_TOKEN)")
	fl.StringVar(&cf.dataDir, "data-dir", "meshgate-gateway", "with --control: where the key, certificate and last good config are kept")
	fl.StringVar(&cf.name, "name", "gateway", "with --control: the gateway's name (its identity is spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/NAME)")
	fl.StringVar(&cf.namespace, "namespace", "default", "with --control: the gateway's namespace")
	fl.StringVar(&cf.trustDomain, "trust-domain", "mesh.local", "with --control: the mesh's trust domain")
	fl.StringVar(&cf.admin, "admin", "127.0.0.1:9901", `with --control: admin API address (loopback), or "off"`)
	fl.StringVar(&cf.accessLog, "access-log", "stdout", `with --control: access log: "stdout", "stderr", "off" or a file`)
	return cmd
}

// runGateway loads cfgPath, starts the gateway and its admin API, calls ready (when not nil) and
// serves until a signal or ctx ends it.
func runGateway(ctx context.Context, cfgPath string, log *slog.Logger, ready func(gw *gateway.Gateway, adm *admin.Server)) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// The Redis client library logs failed dials itself; send them to our logger instead of stderr.
	redis.SetLogger(ratelimit.RedisLog{Logger: log.With("component", "redis")})
	gw := gateway.New(log, metrics.New())
	t, err := gw.LoadFile(cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return exitCode(1)
	}
	al, err := audit.Open(t.Config.Admin.AuditLog)
	if err != nil {
		_ = gw.Shutdown(context.Background())
		return err
	}
	defer al.Close()
	if al != nil {
		gw.SetAudit(al)
		if err := al.Record(audit.Entry{Time: time.Now(), Actor: "startup", Source: cfgPath, Result: "applied", NewVersion: t.Version}); err != nil {
			log.Error("cannot write the audit log", "error", err)
		}
	}
	var adm *admin.Server
	if a := t.Config.Admin; a.Address != "off" {
		opts, err := adminOptions(t.Config, log)
		if err != nil {
			_ = gw.Shutdown(context.Background())
			return err
		}
		adm = admin.New(gw, opts, log.With("component", "admin"))
		if err := adm.Start(); err != nil {
			_ = gw.Shutdown(context.Background())
			return fmt.Errorf("admin listener: %w", err)
		}
		log.Info("admin API listening", "address", adm.Addr().String())
		defer adm.Shutdown(context.Background())
	}
	if ready != nil {
		ready(gw, adm)
	}
	return gateway.WatchAndServe(ctx, gw, cfgPath, log)
}

// adminOptions reads the admin API's settings: its token from the environment variable the config
// names, and its TLS config.
func adminOptions(cfg *config.Config, log *slog.Logger) (admin.Options, error) {
	a := cfg.Admin
	opts := admin.Options{Address: a.Address, Pprof: a.Pprof}
	if a.TokenEnv != "" {
		tok, ok := os.LookupEnv(a.TokenEnv)
		if !ok || len(tok) < 16 {
			return opts, fmt.Errorf("admin API: environment variable %s must hold a token of at least 16 characters", a.TokenEnv)
		}
		opts.Token = tok
	}
	tc, err := gateway.AdminTLS(cfg, log.With("component", "admin"))
	if err != nil {
		return opts, fmt.Errorf("admin API: %w", err)
	}
	opts.TLS = tc
	return opts, nil
}
