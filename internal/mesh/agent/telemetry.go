package agent

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"google.golang.org/grpc"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/observe/record"
	"github.com/meshgate/meshgate/internal/wait"
)

// Telemetry timing.
const (
	// statsInterval is how often the proxy reports its edge counters.
	statsInterval = 5 * time.Second
	// tapFlush is how long tapped records wait to be sent in one batch.
	tapFlush = 100 * time.Millisecond
	// tapBatch is the most records in one message.
	tapBatch = 256
	// recentMax is the most records one "recent" command gets from one proxy.
	recentMax = 200
)

// telemetry keeps the proxy's telemetry stream to the control plane open on conn until ctx
// ends, re-opening it after a failure.
func (a *Agent) telemetry(ctx context.Context, conn *grpc.ClientConn) {
	for backoff := time.Second; ctx.Err() == nil; backoff = min(backoff*2, 30*time.Second) {
		start := time.Now()
		err := a.telemetryOnce(ctx, conn)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		a.log.Debug("agent: telemetry stream ended; reconnecting", "error", err, "in", backoff)
		if !wait.Sleep(ctx, backoff) {
			return
		}
	}
}

// telemetryOnce runs one telemetry stream: counters on a timer, commands as they come.
func (a *Agent) telemetryOnce(ctx context.Context, conn *grpc.ClientConn) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := controlv1.NewTelemetryClient(conn).Connect(sctx)
	if err != nil {
		return err
	}
	hub := a.opts.Records
	var sendMu sync.Mutex
	send := func(m *controlv1.TelemetryReport) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(m)
	}
	if err := send(&controlv1.TelemetryReport{Node: a.opts.Node}); err != nil {
		return err
	}
	taps := map[string]*record.Tap{}
	var wg sync.WaitGroup
	defer func() {
		for _, t := range taps {
			t.Close()
		}
		cancel()
		wg.Wait()
	}()
	cmds := make(chan *controlv1.TelemetryCommand)
	errc := make(chan error, 1)
	go func() {
		for {
			c, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			select {
			case cmds <- c:
			case <-sctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		select {
		case <-sctx.Done():
			return sctx.Err()
		case err := <-errc:
			return err
		case <-tick.C:
			edges := hub.Stats().Take()
			if len(edges) == 0 {
				continue
			}
			m := &controlv1.TelemetryReport{}
			for i := range edges {
				b, _ := json.Marshal(&edges[i])
				m.Edges = append(m.Edges, b)
			}
			if err := send(m); err != nil {
				return err
			}
		case c := <-cmds:
			switch c.GetKind() {
			case "lookup":
				m := &controlv1.TelemetryReport{CommandId: c.GetId(), Done: true}
				for _, r := range hub.Ring().Find(c.GetRequestId()) {
					b, _ := json.Marshal(&r)
					m.Records = append(m.Records, b)
				}
				if err := send(m); err != nil {
					return err
				}
			case "recent":
				var f record.Filter
				if len(c.GetFilter()) > 0 && (json.Unmarshal(c.GetFilter(), &f) != nil || f.Check() != nil) {
					f = record.Filter{Proxy: "\x00"} // malformed: match nothing
				}
				m := &controlv1.TelemetryReport{CommandId: c.GetId(), Done: true}
				for _, r := range hub.Ring().Recent(&f, recentMax) {
					b, _ := json.Marshal(&r)
					m.Records = append(m.Records, b)
				}
				if err := send(m); err != nil {
					return err
				}
			case "tap":
				var f record.Filter
				if len(c.GetFilter()) > 0 {
					if err := json.Unmarshal(c.GetFilter(), &f); err != nil || f.Check() != nil {
						continue
					}
				}
				if old := taps[c.GetId()]; old != nil {
					old.Close()
				}
				t := hub.Tap(&f)
				taps[c.GetId()] = t
				wg.Add(1)
				go func(id string) {
					defer wg.Done()
					forwardTap(sctx, t, id, send)
				}(c.GetId())
			case "stop":
				if t := taps[c.GetId()]; t != nil {
					t.Close()
					delete(taps, c.GetId())
				}
			}
		}
	}
}

// forwardTap sends the tap's records in batches until the tap or ctx ends.
func forwardTap(ctx context.Context, t *record.Tap, id string, send func(*controlv1.TelemetryReport) error) {
	flush := time.NewTicker(tapFlush)
	defer flush.Stop()
	var batch [][]byte
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-t.Records():
			b, _ := json.Marshal(&r)
			batch = append(batch, b)
			if len(batch) < tapBatch {
				continue
			}
		case <-flush.C:
			if len(batch) == 0 {
				continue
			}
		}
		if send(&controlv1.TelemetryReport{CommandId: id, Records: batch}) != nil {
			return
		}
		batch = nil
	}
}
