// Package telemetry is the control plane's side of the proxies' telemetry streams: it keeps
// their edge counters over a sliding window (the dashboard, `meshgate top`, `meshgate impact`)
// and fans taps and request look-ups out to every connected proxy (`meshgate tap`, `explain`).
package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/observe/record"
)

// Caller is who opened a telemetry stream, as the control plane's authentication found.
type Caller struct {
	// Namespace and Service are the proxy's identity.
	Namespace, Service string
}

// Options configure a Server.
type Options struct {
	// Authenticate returns the stream's caller, or an error (a gRPC status) to refuse it.
	Authenticate func(ctx context.Context) (Caller, error)
	// Log receives the server's logs.
	Log *slog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Server serves Telemetry.Connect and answers the admin API's questions.
type Server struct {
	controlv1.UnimplementedTelemetryServer
	opts   Options
	window *Window
	nextID atomic.Uint64

	mu      sync.Mutex
	proxies map[*proxyConn]struct{}
	// answers routes the records of a command to whoever asked: command id → chan answer.
	answers sync.Map
}

// proxyConn is one proxy's open stream.
type proxyConn struct {
	node *controlv1.Node
	cmds chan *controlv1.TelemetryCommand
}

// New returns a server keeping 30 minutes of counters in 10-second buckets.
func New(opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, window: NewWindow(10*time.Second, 30*time.Minute, opts.Now), proxies: map[*proxyConn]struct{}{}}
}

// Window returns the counters.
func (s *Server) Window() *Window { return s.window }

type answer struct {
	records []record.Record
	done    bool
}

// maxEdgesPerReport bounds one report.
const maxEdgesPerReport = 20000

// Connect implements controlv1.TelemetryServer.
func (s *Server) Connect(stream controlv1.Telemetry_ConnectServer) error {
	caller, err := s.opts.Authenticate(stream.Context())
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	n := first.GetNode()
	if n == nil || n.GetService() != caller.Service || n.GetNamespace() != caller.Namespace {
		return fmt.Errorf("telemetry: the first message must describe the caller's own proxy (%s/%s)", caller.Namespace, caller.Service)
	}
	p := &proxyConn{node: n, cmds: make(chan *controlv1.TelemetryCommand, 64)}
	s.mu.Lock()
	s.proxies[p] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.proxies, p)
		s.mu.Unlock()
	}()
	ctx := stream.Context()
	errc := make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				errc <- ctx.Err()
				return
			case c := <-p.cmds:
				if err := stream.Send(c); err != nil {
					errc <- err
					return
				}
			}
		}
	}()
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		select {
		case err := <-errc:
			return err
		default:
		}
		if len(m.GetEdges()) > 0 && len(m.GetEdges()) <= maxEdgesPerReport {
			edges := make([]record.Edge, 0, len(m.GetEdges()))
			for _, b := range m.GetEdges() {
				var e record.Edge
				if json.Unmarshal(b, &e) == nil {
					edges = append(edges, e)
				}
			}
			s.window.Add(edges)
		}
		if id := m.GetCommandId(); id != "" {
			a := answer{done: m.GetDone()}
			for _, b := range m.GetRecords() {
				var r record.Record
				if json.Unmarshal(b, &r) == nil {
					a.records = append(a.records, r)
				}
			}
			if ch, ok := s.answers.Load(id); ok {
				select {
				case ch.(chan answer) <- a:
				default: // the asker fell behind: drop
				}
			}
		}
	}
}

// broadcast sends c to every connected proxy and returns how many got it.
func (s *Server) broadcast(c *controlv1.TelemetryCommand) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p := range s.proxies {
		select {
		case p.cmds <- c:
			n++
		default:
		}
	}
	return n
}

// Proxies returns how many proxies have a telemetry stream open.
func (s *Server) Proxies() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.proxies)
}

// errNoProxies answers a question no proxy can hear.
var errNoProxies = errors.New("telemetry: no proxy is connected")

// Tap streams the records f matches on every proxy to out until ctx ends or out fails.
func (s *Server) Tap(ctx context.Context, f *record.Filter, out func(record.Record) error) error {
	id := "tap-" + strconv.FormatUint(s.nextID.Add(1), 10)
	ch := make(chan answer, 256)
	s.answers.Store(id, ch)
	defer s.answers.Delete(id)
	fb, _ := json.Marshal(f)
	if s.broadcast(&controlv1.TelemetryCommand{Id: id, Kind: "tap", Filter: fb}) == 0 {
		return errNoProxies
	}
	defer s.broadcast(&controlv1.TelemetryCommand{Id: id, Kind: "stop"})
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-ch:
			for _, r := range a.records {
				if err := out(r); err != nil {
					return err
				}
			}
		}
	}
}

// Lookup asks every proxy for the records of request id and returns what arrives within wait,
// oldest first.
func (s *Server) Lookup(ctx context.Context, id string, wait time.Duration) ([]record.Record, error) {
	return s.ask(ctx, &controlv1.TelemetryCommand{Kind: "lookup", RequestId: id}, wait)
}

// Recent asks every proxy for its most recent records that f matches (up to 200 each) and
// returns what arrives within wait, oldest first.
func (s *Server) Recent(ctx context.Context, f *record.Filter, wait time.Duration) ([]record.Record, error) {
	fb, _ := json.Marshal(f)
	return s.ask(ctx, &controlv1.TelemetryCommand{Kind: "recent", Filter: fb}, wait)
}

// ask sends a one-answer command to every proxy and gathers the answers.
func (s *Server) ask(ctx context.Context, c *controlv1.TelemetryCommand, wait time.Duration) ([]record.Record, error) {
	cid := c.Kind + "-" + strconv.FormatUint(s.nextID.Add(1), 10)
	c.Id = cid
	ch := make(chan answer, 256)
	s.answers.Store(cid, ch)
	defer s.answers.Delete(cid)
	n := s.broadcast(c)
	if n == 0 {
		return nil, errNoProxies
	}
	var out []record.Record
	t := time.NewTimer(wait)
	defer t.Stop()
	for got := 0; got < n; {
		select {
		case <-ctx.Done():
			return out, nil
		case <-t.C:
			got = n
		case a := <-ch:
			out = append(out, a.records...)
			if a.done {
				got++
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}
