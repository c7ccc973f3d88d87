package push

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/state"
)

// ServerOptions configure a push Server. Zero values take the documented defaults.
type ServerOptions struct {
	// Log receives the server's logs. Default slog.Default().
	Log *slog.Logger
	// Registerer, when set, gets the server's metrics (meshgate_control_push_*).
	Registerer prometheus.Registerer
	// Debounce is the quiet period after an Update before the new state is pushed: updates that
	// follow within it are pushed together. Default 100ms.
	Debounce time.Duration
	// MaxDebounce bounds how long a continuous burst of updates holds a push back: a state is
	// pushed at least this often while updates keep coming. Default 1s.
	MaxDebounce time.Duration
	// AckTimeout is how long a proxy may take to ACK or NACK a response before it counts as
	// stale (in Status and the meshgate_control_push_stale_proxies gauge). Default 30s.
	AckTimeout time.Duration
	// Authorize, when set, is called with the stream's context and the node on its first
	// message; an error ends the stream with its gRPC code (codes.PermissionDenied when it
	// carries none) and is logged.
	Authorize func(ctx context.Context, node *controlv1.Node) error
}

// Server is the control plane's end of the config push: it turns each state into resources and
// streams every connected proxy its scope of them. It is safe for concurrent use.
type Server struct {
	opts    ServerOptions
	log     *slog.Logger
	metrics *metrics
	viewIDs atomic.Uint64

	updated chan struct{} // an Update is pending (capacity 1)
	pendMu  sync.Mutex
	pending *state.State
	since   time.Time // when the oldest pending update arrived

	cur atomic.Pointer[generation]

	viewsMu sync.Mutex
	latest  map[string]*view // the newest view of each scope key in use

	proxiesMu sync.Mutex
	proxies   map[uint64]*proxy
	streamSeq uint64

	lifeMu sync.Mutex
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup
}

// NewServer returns a server with no state yet: streams wait for the first Update.
func NewServer(opts ServerOptions) *Server {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.MaxDebounce <= 0 {
		opts.MaxDebounce = time.Second
	}
	opts.MaxDebounce = max(opts.MaxDebounce, opts.Debounce)
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = 30 * time.Second
	}
	s := &Server{
		opts: opts, log: opts.Log,
		updated: make(chan struct{}, 1),
		latest:  make(map[string]*view),
		proxies: make(map[uint64]*proxy),
		done:    make(chan struct{}),
	}
	s.metrics = newMetrics(opts.Registerer, func() float64 { return float64(s.staleCount()) })
	s.cur.Store(&generation{next: make(chan struct{})}) // no state yet
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.debounce()
	}()
	return s
}

// Register serves the Discovery service on g.
func (s *Server) Register(g *grpc.Server) {
	controlv1.RegisterDiscoveryServer(g, discovery{s: s})
}

// Update hands the server a new state. It does not block: the state is pushed once updates
// have been quiet for Debounce (or MaxDebounce after the first of a burst), and only the newest
// state of a burst is pushed.
func (s *Server) Update(st *state.State) {
	if st == nil || st.Config == nil {
		return
	}
	s.pendMu.Lock()
	if s.pending == nil {
		s.since = time.Now()
	}
	s.pending = st
	s.pendMu.Unlock()
	select {
	case s.updated <- struct{}{}:
	default:
	}
}

// Close ends every stream (codes.Unavailable) and waits for the server's goroutines. Updates
// after Close are ignored.
func (s *Server) Close() {
	s.lifeMu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	s.lifeMu.Unlock()
	s.wg.Wait()
}

// enter counts a goroutine in wg unless the server is closed.
func (s *Server) enter() bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// debounce publishes pending states: after Debounce without updates, or MaxDebounce after the
// first update of a burst.
func (s *Server) debounce() {
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	ceiling := time.NewTimer(time.Hour)
	ceiling.Stop()
	defer quiet.Stop()
	defer ceiling.Stop()
	burst := false
	for {
		select {
		case <-s.done:
			return
		case <-s.updated:
			if !burst {
				burst = true
				ceiling.Reset(s.opts.MaxDebounce)
			}
			quiet.Reset(s.opts.Debounce)
			continue
		case <-quiet.C:
			ceiling.Stop()
		case <-ceiling.C:
			quiet.Stop()
		}
		burst = false
		s.publish()
	}
}

// publish turns the pending state into the current generation and wakes the streams.
func (s *Server) publish() {
	s.pendMu.Lock()
	st, since := s.pending, s.since
	s.pending = nil
	s.pendMu.Unlock()
	if st == nil {
		return
	}
	prev := s.cur.Load()
	ix, errs := buildIndex(st, prev.ix)
	for _, err := range errs {
		s.log.Error("push: resource left out", "state", st.Version, "error", err)
	}
	g := &generation{
		ix: ix, versionInfo: strconv.FormatUint(st.Version, 10), updated: since,
		next: make(chan struct{}), views: make(map[string]*viewEntry),
	}
	// Compute the views of every scope in use now, once, before the streams ask for them; scopes
	// nobody uses any more are forgotten.
	inUse := s.scopesInUse()
	s.viewsMu.Lock()
	for k := range s.latest {
		if _, ok := inUse[k]; !ok {
			delete(s.latest, k)
		}
	}
	s.viewsMu.Unlock()
	for k, sc := range inUse {
		g.view(s, k, sc)
	}
	s.cur.Store(g)
	close(prev.next)
	s.log.Debug("push: state published", "version", g.versionInfo, "resources", len(ix.byKey), "scopes", len(inUse))
}

// generation is one published state with the views computed from it.
type generation struct {
	ix          *index // nil before the first state
	versionInfo string
	updated     time.Time     // when the oldest update it carries arrived
	next        chan struct{} // closed when a newer generation replaces this one

	mu    sync.Mutex
	views map[string]*viewEntry
}

type viewEntry struct {
	once sync.Once
	v    *view
}

// view returns the view of scope sc (key k) in g, computing it once. A view whose content equals
// the newest view of the same scope is that view, so streams see that nothing changed.
func (g *generation) view(s *Server, k string, sc scope) *view {
	g.mu.Lock()
	e := g.views[k]
	if e == nil {
		e = &viewEntry{}
		g.views[k] = e
	}
	g.mu.Unlock()
	e.once.Do(func() {
		res := sc.resources(g.ix)
		s.viewsMu.Lock()
		defer s.viewsMu.Unlock()
		if old := s.latest[k]; old != nil && sameContent(old.res, res) {
			e.v = old
			return
		}
		e.v = newView(s.viewIDs.Add(1), res)
		s.latest[k] = e.v
	})
	return e.v
}

// discovery adapts Server to the generated service interface.
type discovery struct {
	controlv1.UnimplementedDiscoveryServer
	s *Server
}

func (d discovery) Stream(ss controlv1.Discovery_StreamServer) error { return d.s.stream(ss) }
