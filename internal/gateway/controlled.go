package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/identity"
	"github.com/meshgate/meshgate/internal/mesh/agent"
	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/mesh/mtls"
	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// ControlledOptions configure a gateway that takes its config from the control plane.
type ControlledOptions struct {
	// Control, ControlCA, JoinToken, DataDir and TrustDomain reach the control plane (see
	// agent.Options).
	Control, ControlCA, JoinToken, DataDir, TrustDomain string
	// Name and Namespace are the gateway's identity: spiffe://TRUST-DOMAIN/ns/NAMESPACE/sa/NAME.
	Name, Namespace string
	// ID names this gateway instance to the control plane.
	ID string
	// Version is the build version reported to the control plane.
	Version string
	// Admin and AccessLog are the local settings the pushed config does not decide.
	Admin     config.Admin
	AccessLog config.AccessLog
	// Log receives the gateway's logs.
	Log *slog.Logger
}

// Controlled is a gateway running on the control plane's config.
type Controlled struct {
	*Gateway
	agent  *agent.Agent
	cancel context.CancelFunc
}

// StartControlled starts a gateway whose listeners, routes, services (with their registered
// endpoints) and policies come from the control plane, calling mesh services over mutual TLS
// with its own workload identity. It starts from the last config it applied, kept in the data
// directory, when the control plane cannot be reached.
func StartControlled(o ControlledOptions) (*Controlled, error) {
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%s-%d", o.Name, host, os.Getpid())
	}
	reg := metrics.New()
	gw := New(o.Log, reg)
	gw.Describe(o.ID, push.RoleGateway, "", nil)
	mm, err := mtls.NewMetrics(reg.Prom)
	if err != nil {
		return nil, err
	}
	revoked := &mtls.Revocations{}
	edgeKey := &edgectx.Key{}
	gw.Engine().SetEdgeKey(edgeKey)
	apply := func(s *push.Snapshot) error {
		cfg, err := s.Config()
		if err != nil {
			return err
		}
		revs, err := s.Revocations()
		if err != nil {
			return err
		}
		revoked.Set(revs)
		edgeKey.Set(s.EdgeKey())
		cfg.Admin, cfg.AccessLog = o.Admin, o.AccessLog
		cfg.Source.File = "<control version " + s.Version + ">"
		config.ApplyDefaults(cfg)
		if err := config.Validate(cfg); err != nil {
			return err
		}
		_, err = gw.Apply(cfg)
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ag, err := agent.New(agent.Options{
		ControlAddress: o.Control, ControlCA: o.ControlCA, JoinToken: o.JoinToken, DataDir: o.DataDir,
		TrustDomain: o.TrustDomain, Apply: apply, Log: o.Log.With("component", "agent"), Records: gw.Records(), Registerer: reg.Prom,
		Node: &controlv1.Node{Id: o.ID, Role: push.RoleGateway, Service: o.Name, Namespace: o.Namespace, BuildVersion: o.Version},
		OnIdentity: func(src *identity.Source) {
			gw.Engine().SetMeshDialer(mtls.NewDialer(src, nil, mm, revoked))
		},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	if err := ag.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	return &Controlled{Gateway: gw, agent: ag, cancel: cancel}, nil
}

// Ready is closed once a config has been applied (from the control plane or the disk cache).
func (c *Controlled) Ready() <-chan struct{} { return c.agent.Ready() }

// Close disconnects from the control plane and shuts the gateway down, letting in-flight
// requests finish until ctx ends.
func (c *Controlled) Close(ctx context.Context) error {
	c.cancel()
	c.agent.Wait()
	if err := c.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
