package control

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/state"
	"github.com/meshgate/meshgate/internal/control/store"
)

// stateHolder keeps the state this replica serves and what went into it.
type stateHolder struct {
	mu       sync.RWMutex
	cur      *state.State
	problems []state.Problem
	cfgErr   error // the stored config's last load error, if it could not be served
	version  uint64
}

func (h *stateHolder) get() (*state.State, []state.Problem, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.cur, h.problems, h.cfgErr
}

// stateLoop rebuilds the served state whenever the stored config, the registry or the CA
// changes, and hands it to the push and xDS servers (which debounce and diff).
func (s *Server) stateLoop(ctx context.Context) {
	revs := s.store.WatchConfig(ctx)
	wl := s.store.WatchWorkloads(ctx)
	cfg := emptyConfig()
	var cfgVersion uint64
	rebuild := func() {
		if err := s.publish(ctx, cfg, cfgVersion); err != nil && ctx.Err() == nil {
			s.log.Warn("control: cannot read the registry; serving the last state", "error", err)
		}
	}
	rebuild()
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case rev, ok := <-revs:
			if !ok {
				return
			}
			c, err := config.LoadBytes(rev.Source, rev.YAML)
			if err != nil {
				// Stored configs were valid when stored; a newer meshgate may refuse an old one.
				// Keep serving what is served, and say so on the status.
				s.state.mu.Lock()
				s.state.cfgErr = err
				s.state.mu.Unlock()
				s.log.Error("control: stored config cannot be served; keeping the previous one",
					"version", rev.Version, "error", err)
				continue
			}
			s.state.mu.Lock()
			s.state.cfgErr = nil
			s.state.mu.Unlock()
			cfg, cfgVersion = c, rev.Version
		case _, ok := <-wl:
			if !ok {
				return
			}
		case <-s.changed:
			if err := s.writeBundleFile(); err != nil {
				s.log.Error("control: cannot write the trust bundle file", "error", err)
			}
		case <-retry.C:
			// Periodic rebuild: picks up a registry that was unreachable and workload expiries
			// a store reports late. Unchanged resources cost proxies nothing.
		}
		rebuild()
	}
}

// publish builds a new state from cfg and the live workloads and serves it.
func (s *Server) publish(ctx context.Context, cfg *config.Config, cfgVersion uint64) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ws, err := s.store.Workloads(rctx)
	if err != nil {
		cancel()
		return err
	}
	revs, err := s.storedRevocations(rctx)
	cancel()
	if err != nil {
		return err
	}
	s.revocations.Store(&revs)
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	if cur := s.state.cur; cur != nil && cur.ConfigVersion == cfgVersion && cur.Config == cfg &&
		sameWorkloads(cur.Workloads, ws) && string(cur.TrustBundle) == string(s.ca().BundlePEM()) &&
		slices.Equal(cur.Revocations, revs) {
		return nil
	}
	s.state.version++
	st := &state.State{
		Version: s.state.version, ConfigVersion: cfgVersion, Config: cfg, Workloads: ws,
		TrustBundle: s.ca().BundlePEM(), TrustDomain: s.trustDomain.String(), Revocations: revs,
		EdgeKey: s.edgeKey,
	}
	resolved, problems := st.Resolve()
	s.state.cur, s.state.problems = st, problems
	s.metrics.stateVersion.Set(float64(st.Version))
	s.metrics.configVersion.Set(float64(cfgVersion))
	s.metrics.workloads.Set(float64(len(ws)))
	s.metrics.resolveIssues.Set(float64(len(problems)))
	s.push.Update(st)
	if err := s.xds.Update(strconv.FormatUint(st.Version, 10), resolved); err != nil {
		s.log.Error("control: xDS translation failed; xDS clients keep the previous state", "error", err)
	}
	s.ready.Store(true)
	return nil
}

// sameWorkloads reports whether two registry listings serve the same endpoints (expiry times
// alone do not count).
func sameWorkloads(a, b []state.Workload) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.ID != y.ID || x.Health != y.Health || x.Service != y.Service || x.Namespace != y.Namespace ||
			x.Version != y.Version || !slices.Equal(x.Addresses, y.Addresses) || !slices.Equal(x.Ports, y.Ports) ||
			!maps.Equal(x.Labels, y.Labels) {
			return false
		}
	}
	return true
}

// emptyConfig is what a control plane with no stored config serves: nothing, validly.
func emptyConfig() *config.Config {
	c := &config.Config{Version: 1}
	config.ApplyDefaults(c)
	return c
}

// currentRevision returns the stored config's newest revision, or version 0 when none.
func (s *Server) currentRevision(ctx context.Context) (store.Revision, error) {
	rev, err := s.store.Current(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return store.Revision{}, nil
	}
	return rev, err
}
