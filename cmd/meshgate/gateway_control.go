package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/admin"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/mesh/agent"
	"github.com/meshgate/meshgate/internal/mesh/mtls"
	"github.com/meshgate/meshgate/internal/netaddr"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy/policy/ratelimit"
)

// gatewayControlFlags are the settings of a gateway that takes its config from the control plane.
type gatewayControlFlags struct {
	control, controlCA, tokenFile, dataDir, name, namespace, trustDomain, admin, accessLog string
}

// runGatewayControl runs a gateway whose listeners, routes, services (with their registered
// endpoints) and policies come from the control plane. It starts from the last config it
// applied, kept in the data directory, when the control plane cannot be reached.
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
	reg := metrics.New()
	gw := gateway.New(log, reg)
	meshMetrics, err := mtls.NewMetrics(reg.Prom)
	if err != nil {
		return err
	}
	local := config.Config{Version: 1, Admin: config.Admin{Address: f.admin}, AccessLog: config.AccessLog{Path: f.accessLog}}
	apply := func(s *push.Snapshot) error {
		cfg, err := s.Config()
		if err != nil {
			return err
		}
		cfg.Admin, cfg.AccessLog = local.Admin, local.AccessLog
		cfg.Source.File = "<control version " + s.Version + ">"
		config.ApplyDefaults(cfg)
		if err := config.Validate(cfg); err != nil {
			return err
		}
		_, err = gw.Apply(cfg)
		return err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	host, _ := os.Hostname()
	ag, err := agent.New(agent.Options{
		ControlAddress: f.control, ControlCA: f.controlCA, JoinToken: tok, DataDir: f.dataDir,
		TrustDomain: f.trustDomain, Apply: apply, Log: log.With("component", "agent"),
		OnIdentity: func(src *identity.Source) {
			gw.Engine().SetMeshDialer(mtls.NewDialer(src, nil, meshMetrics))
		},
		Node: &controlv1.Node{
			Id: fmt.Sprintf("%s-%s-%d", f.name, host, os.Getpid()), Role: "gateway",
			Service: f.name, Namespace: f.namespace, BuildVersion: version,
		},
	})
	if err != nil {
		return err
	}
	if err := ag.Start(actx); err != nil {
		return err
	}
	if f.admin != "off" {
		adm := admin.New(gw, admin.Options{Address: f.admin, ConfigFromControl: true}, log.With("component", "admin"))
		if err := adm.Start(); err != nil {
			cancel()
			ag.Wait()
			_ = gw.Shutdown(context.Background())
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
	cancel()
	ag.Wait()
	sctx, scancel := context.WithTimeout(context.Background(), gateway.ShutdownTimeout)
	defer scancel()
	if err := gw.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
