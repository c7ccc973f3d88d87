package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// Register makes the agent register w with the control plane (as soon as it has a connection)
// and heartbeat it until the agent stops, when it is deregistered. Only the first call counts.
func (a *Agent) Register(w *controlv1.Workload) {
	if a.workload.CompareAndSwap(nil, w) {
		h := w.GetHealth()
		if h == "" {
			h = "healthy"
		}
		a.health.Store(h)
		close(a.registers)
	}
}

// SetHealth reports the workload's health ("healthy", "unhealthy" or "draining") to the control
// plane at once; callers stop sending new requests to a draining workload.
func (a *Agent) SetHealth(h string) {
	a.health.Store(h)
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

// heartbeat waits for Register, then registers the workload and keeps it alive until ctx
// ends, registering again when the control plane has forgotten it (expiry, a restarted
// registry), and deregisters it at the end so callers stop sending to it at once.
func (a *Agent) heartbeat(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-a.registers:
	}
	w := a.workload.Load()
	interval := 10 * time.Second
	registered := false
	for {
		a.mu.Lock()
		conn := a.conn
		a.mu.Unlock()
		if conn != nil {
			health, _ := a.health.Load().(string)
			reg := controlv1.NewRegistryClient(conn)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var err error
			if registered {
				_, err = reg.Heartbeat(cctx, &controlv1.HeartbeatRequest{Id: w.GetId(), Health: health})
				if status.Code(err) == codes.NotFound {
					registered = false
				}
			}
			if !registered && ctx.Err() == nil {
				rw := proto.Clone(w).(*controlv1.Workload)
				rw.Health = health
				var resp *controlv1.RegisterResponse
				resp, err = reg.Register(cctx, &controlv1.RegisterRequest{Workload: rw})
				if err == nil {
					registered = true
					if d := resp.GetHeartbeatInterval().AsDuration(); d > 0 {
						interval = d
					}
					a.log.Info("agent: workload registered", "id", w.GetId(), "heartbeat", interval)
				}
			}
			cancel()
			if err != nil && ctx.Err() == nil {
				a.log.Warn("agent: registry call failed", "error", err)
			}
		}
		next := interval
		if !registered || conn == nil {
			next = min(interval, time.Second) // not registered yet: try again soon
		}
		select {
		case <-ctx.Done():
			a.deregister(w.GetId())
			return
		case <-a.poke:
		case <-time.After(next):
		}
	}
}

// deregister removes the workload, briefly, on the way out.
func (a *Agent) deregister(id string) {
	a.mu.Lock()
	conn := a.conn
	a.mu.Unlock()
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := controlv1.NewRegistryClient(conn).Deregister(ctx, &controlv1.DeregisterRequest{Id: id}); err != nil {
		a.log.Warn("agent: deregister failed", "error", err)
	}
}
