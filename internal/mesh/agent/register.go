package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/wait"
)

// heartbeat registers the workload and keeps it alive until ctx ends, registering again when
// the control plane has forgotten it (expiry, a restarted registry), and deregisters it at the
// end so callers stop sending to it at once.
func (a *Agent) heartbeat(ctx context.Context) {
	interval := 10 * time.Second
	registered := false
	for {
		a.mu.Lock()
		conn := a.conn
		a.mu.Unlock()
		if conn != nil {
			reg := controlv1.NewRegistryClient(conn)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			if registered {
				_, err = reg.Heartbeat(cctx, &controlv1.HeartbeatRequest{Id: a.opts.Workload.GetId(), Health: a.opts.Workload.GetHealth()})
				if status.Code(err) == codes.NotFound {
					registered = false
				}
			}
			if !registered && ctx.Err() == nil {
				var resp *controlv1.RegisterResponse
				resp, err = reg.Register(cctx, &controlv1.RegisterRequest{Workload: a.opts.Workload})
				if err == nil {
					registered = true
					if d := resp.GetHeartbeatInterval().AsDuration(); d > 0 {
						interval = d
					}
					a.log.Info("agent: workload registered", "id", a.opts.Workload.GetId(), "heartbeat", interval)
				}
			}
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("agent: registry call failed", "error", err)
			}
		}
		if !wait.Sleep(ctx, interval) {
			break
		}
	}
	a.deregister()
}

// deregister removes the workload, briefly, on the way out.
func (a *Agent) deregister() {
	a.mu.Lock()
	conn := a.conn
	a.mu.Unlock()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := controlv1.NewRegistryClient(conn).Deregister(ctx, &controlv1.DeregisterRequest{Id: a.opts.Workload.GetId()}); err != nil {
		a.log.Warn("agent: deregister failed", "error", err)
	}
}
