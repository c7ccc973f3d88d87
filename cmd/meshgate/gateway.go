package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
)

func newGatewayCommand() *cobra.Command {
	var cfgPath, logLevel string
	cmd := &cobra.Command{
		Use:   "gateway --config FILE",
		Short: "Run the edge gateway on a config file (reloaded on change, SIGHUP or PUT /config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			return runGateway(cmd.Context(), cfgPath, log, nil)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "config file (YAML)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	_ = cmd.MarkFlagRequired("config")
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
	var adm *admin.Server
	if a := t.Config.Admin; a.Address != "off" {
		adm = admin.New(gw, a.Address, a.Pprof, log.With("component", "admin"))
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
