package push

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// ProxyStatus is one connected proxy's push state, as the admin API shows it.
type ProxyStatus struct {
	// ID, Role, Service and Namespace are the proxy's node.
	ID        string `json:"id"`
	Role      string `json:"role"`
	Service   string `json:"service"`
	Namespace string `json:"namespace"`
	// Peer is the address the stream comes from.
	Peer string `json:"peer"`
	// ConnectedSince is when the stream opened.
	ConnectedSince time.Time `json:"connectedSince"`
	// VersionSent is the state version last sent; VersionAcked the one the proxy last applied
	// (on resume, the version it said it holds).
	VersionSent  string `json:"versionSent"`
	VersionAcked string `json:"versionAcked"`
	// PendingSince is when the response awaiting an answer was sent; nil when none is.
	PendingSince *time.Time `json:"pendingSince,omitempty"`
	// LastNACK is the last response the proxy refused, if any.
	LastNACK *NACK `json:"lastNack,omitempty"`
	// Stale says the proxy has not answered a response for longer than the ACK timeout.
	Stale bool `json:"stale"`
}

// NACK is a response a proxy refused.
type NACK struct {
	// Version is the state version refused.
	Version string `json:"version"`
	// Error is the proxy's reason.
	Error string `json:"error"`
	// Time is when the NACK arrived.
	Time time.Time `json:"time"`
}

// maxErrorDetail bounds the NACK text kept and logged, in bytes.
const maxErrorDetail = 4096

// proxy is the status of one stream, updated by its goroutine and read by Status.
type proxy struct {
	key   string // scope key
	scope scope

	mu sync.Mutex
	st ProxyStatus
}

func (p *proxy) update(f func(st *ProxyStatus)) {
	p.mu.Lock()
	f(&p.st)
	p.mu.Unlock()
}

// snapshot returns a copy of the status with Stale computed at now.
func (p *proxy) snapshot(now time.Time, ackTimeout time.Duration) ProxyStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.st
	if st.PendingSince != nil {
		t := *st.PendingSince
		st.PendingSince = &t
		st.Stale = now.Sub(t) > ackTimeout
	}
	if st.LastNACK != nil {
		n := *st.LastNACK
		st.LastNACK = &n
	}
	return st
}

// Status lists the connected proxies, by ID.
func (s *Server) Status() []ProxyStatus {
	now := time.Now()
	s.proxiesMu.Lock()
	out := make([]ProxyStatus, 0, len(s.proxies))
	for _, p := range s.proxies {
		out = append(out, p.snapshot(now, s.opts.AckTimeout))
	}
	s.proxiesMu.Unlock()
	slices.SortFunc(out, func(a, b ProxyStatus) int {
		return cmp.Or(cmp.Compare(a.ID, b.ID), a.ConnectedSince.Compare(b.ConnectedSince))
	})
	return out
}

// staleCount counts the proxies whose ACK is overdue.
func (s *Server) staleCount() int {
	now := time.Now()
	n := 0
	s.proxiesMu.Lock()
	defer s.proxiesMu.Unlock()
	for _, p := range s.proxies {
		p.mu.Lock()
		if p.st.PendingSince != nil && now.Sub(*p.st.PendingSince) > s.opts.AckTimeout {
			n++
		}
		p.mu.Unlock()
	}
	return n
}

// addProxy records a new stream.
func (s *Server) addProxy(p *proxy) uint64 {
	s.proxiesMu.Lock()
	defer s.proxiesMu.Unlock()
	s.streamSeq++
	s.proxies[s.streamSeq] = p
	return s.streamSeq
}

func (s *Server) removeProxy(id uint64) {
	s.proxiesMu.Lock()
	delete(s.proxies, id)
	s.proxiesMu.Unlock()
}

// scopesInUse returns the scopes of the connected proxies by key.
func (s *Server) scopesInUse() map[string]scope {
	s.proxiesMu.Lock()
	defer s.proxiesMu.Unlock()
	out := make(map[string]scope)
	for _, p := range s.proxies {
		out[p.key] = p.scope
	}
	return out
}
