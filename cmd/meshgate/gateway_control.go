package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/netaddr"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
)

// gatewayControlFlags are the settings of a gateway that takes its config from the control plane.
type gatewayControlFlags struct {
	control, controlCA, tokenFile, dataDir, name, namespace, trustDomain, admin, accessLog string
}

// runGatewayControl runs a gateway on the control plane's config until ctx ends or a signal
// arrives.
func runGatewayControl(ctx context.Context, f gatewayControlFlags, log *slog.Logger) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.admin != "off" && !netaddr.IsLoopbackAddr(f.admin) {
		return fmt.Errorf("--admin %s: a gateway on the control plane serves its admin API on loopback only", f.admin)
	}
	redis.SetLogger(ratelimit.RedisLog{Logger: log.With("component", "redis")})
	tok := strings.TrimSpace(os.Getenv("MESHGATE_JOIN_TOKEN"))
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return fmt.Errorf("join token: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	gw, err := gateway.StartControlled(gateway.ControlledOptions{
		Control: f.control, ControlCA: f.controlCA, JoinToken: tok, DataDir: f.dataDir, TrustDomain: f.trustDomain,
		Name: f.name, Namespace: f.namespace, Version: version,
		Admin: config.Admin{Address: f.admin}, AccessLog: config.AccessLog{Path: f.accessLog}, Log: log,
	})
	if err != nil {
		return err
	}
	if f.admin != "off" {
		adm := admin.New(gw.Gateway, admin.Options{Address: f.admin, ConfigFromControl: true}, log.With("component", "admin"))
		if err := adm.Start(); err != nil {
			_ = gw.Close(context.Background())
			return fmt.Errorf("admin listener: %w", err)
		}
		log.Info("admin API listening", "address", adm.Addr().String())
		defer adm.Shutdown(context.Background())
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	select {
	case <-ctx.Done():
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	}
	sctx, scancel := context.WithTimeout(context.Background(), gateway.ShutdownTimeout)
	defer scancel()
	return gw.Close(sctx)
}
