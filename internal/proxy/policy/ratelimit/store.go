package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgate/meshgate/internal/config"
)

// Store bounds.
const (
	// clientGrace is how long a Redis client that no limiter uses any more stays open after
	// Retain, so that requests still running on the previous table finish their calls.
	clientGrace = 5 * time.Second
	// maxCandidates bounds the limiters a Store remembers per route between two Retains: those of
	// configs that were compiled but refused, which a later config may bring back.
	maxCandidates = 4
)

// Options configures a Store.
type Options struct {
	// Logger receives the Redis availability changes. Default: discard.
	Logger *slog.Logger
	// OnDecision, when set, is called once per request with the route name and one of
	// "admitted", "limited", "unavailable" and "failed_open", for metrics. It must be fast.
	OnDecision func(route, decision string)
	// LookupEnv reads the environment variables that hold Redis passwords. Default os.LookupEnv.
	LookupEnv func(name string) (string, bool)
}

// Store holds the rate-limit state of one process: the limiters of the routes, keyed by route
// name and policy so that their buckets outlive a config reload, and the Redis clients they share.
// Create one per process with NewStore and Close it at exit.
type Store struct {
	log        *slog.Logger
	onDecision func(route, decision string)
	lookupEnv  func(string) (string, bool)
	clock      func() int64 // nanoseconds on a monotonic clock
	grace      time.Duration
	script     *redis.Script

	mu        sync.Mutex
	closed    bool
	limiters  map[string][]*Limiter   // per route, the most recently returned last
	quotas    map[string]*storedQuota // per "quota:" and plan name
	requested map[string]bool         // routes Limiter was called for since the last Retain
	clients   map[clientKey]*redisClient
	retiring  map[clientKey]*retiringClient
}

// retiringClient is a Redis client no limiter uses, waiting out the grace period before it closes.
type retiringClient struct {
	client *redisClient
	timer  *time.Timer
}

// NewStore returns an empty store.
func NewStore(opts Options) *Store {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	base := time.Now()
	return &Store{
		log:        log,
		onDecision: opts.OnDecision,
		lookupEnv:  lookup,
		clock:      func() int64 { return int64(time.Since(base)) },
		grace:      clientGrace,
		script:     redis.NewScript(gcraScript),
		limiters:   map[string][]*Limiter{},
		quotas:     map[string]*storedQuota{},
		requested:  map[string]bool{},
		clients:    map[clientKey]*redisClient{},
		retiring:   map[clientKey]*retiringClient{},
	}
}

// errClosed is returned by Limiter after Close.
var errClosed = errors.New("ratelimit: store is closed")

// Limiter returns the limiter of route's policy p, which must be defaulted and valid. Called again
// with an equal policy for the same route (after a config reload, say) it returns the same
// *Limiter, with the same buckets; otherwise a new one. It reads the Redis password from the
// environment but does not connect: a global limit connects on its first request.
func (s *Store) Limiter(route string, p *config.RateLimitPolicy) (*Limiter, error) {
	if err := checkPolicy(p); err != nil {
		return nil, fmt.Errorf("ratelimit: route %q: %w", route, err)
	}
	var key clientKey
	var password string
	if g := p.Global; g != nil {
		var err error
		if key, password, err = s.redisKey(g.Redis, g.DB, g.PasswordEnv); err != nil {
			return nil, fmt.Errorf("ratelimit: route %q: %w", route, err)
		}
	}
	fp := fingerprint(p, key)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	s.requested[route] = true
	list := s.limiters[route]
	for i, l := range list {
		if l.fingerprint == fp {
			s.limiters[route] = append(append(list[:i:i], list[i+1:]...), l)
			return l, nil
		}
	}
	l := &Limiter{route: route, fingerprint: fp, store: s}
	if p.Local != nil {
		l.local = newLocalLimit(p.Local)
	}
	if p.Global != nil {
		l.global = newGlobalLimit(route, p.Global, s.client(key, password), s.script)
	}
	if len(list) >= maxCandidates {
		list = list[len(list)-maxCandidates+1:]
	}
	s.limiters[route] = append(list, l)
	return l, nil
}

// redisKey returns the client key of a Redis server and the password read from the environment
// variable passwordEnv (none when it is ""); the key holds only the password's digest.
func (s *Store) redisKey(addr string, db int, passwordEnv string) (clientKey, string, error) {
	key := clientKey{addr: addr, db: db, passwordEnv: passwordEnv}
	if passwordEnv == "" {
		return key, "", nil
	}
	pw, ok := s.lookupEnv(passwordEnv)
	if !ok {
		return key, "", fmt.Errorf("environment variable %s (the Redis password) is not set", passwordEnv)
	}
	if pw != "" {
		key.password = sha256.Sum256([]byte(pw))
	}
	return key, pw, nil
}

// checkPolicy checks what the limiter's arithmetic relies on; the config validator says more.
func checkPolicy(p *config.RateLimitPolicy) error {
	if p == nil || p.Local == nil && p.Global == nil {
		return errors.New("no local or global limit")
	}
	rateOK := func(r float64) bool { return r > 0 && !math.IsInf(r, 0) }
	if l := p.Local; l != nil && (!rateOK(l.Rate) || l.Burst < 1 || l.MaxKeys < 1) {
		return fmt.Errorf("local limit needs a rate above 0, a burst and maxKeys of at least 1 (rate %v, burst %d, maxKeys %d)", l.Rate, l.Burst, l.MaxKeys)
	}
	if g := p.Global; g != nil && (!rateOK(g.Rate) || g.Burst < 1 || g.Timeout <= 0 || g.Redis == "") {
		return fmt.Errorf("global limit needs redis, a rate above 0, a burst of at least 1 and a timeout above 0 (rate %v, burst %d, timeout %v)", g.Rate, g.Burst, g.Timeout)
	}
	return nil
}

// fingerprint identifies a policy and the credentials its Redis client uses: the JSON form of p
// (which covers fields added later without change here) and a digest of the password.
func fingerprint(p *config.RateLimitPolicy, key clientKey) string {
	b, err := json.Marshal(p)
	if err != nil {
		// RateLimitPolicy holds only strings, numbers, booleans and pointers to structs of those;
		// checkPolicy refused the infinite rates JSON cannot encode.
		panic("ratelimit: fingerprint: " + err.Error())
	}
	return string(b) + "|" + hex.EncodeToString(key.password[:8])
}

// client returns the shared client for key, reviving a retiring one or creating one. s.mu is held.
func (s *Store) client(key clientKey, password string) *redisClient {
	if c := s.clients[key]; c != nil {
		return c
	}
	if r := s.retiring[key]; r != nil {
		delete(s.retiring, key)
		if r.timer.Stop() {
			s.clients[key] = r.client
			return r.client
		}
		// The timer has fired: that client is closing.
	}
	c := newRedisClient(key, password, s.log)
	s.clients[key] = c
	return c
}

// Retain forgets the limiters of routes not in routes and of routes Limiter was not called for
// since the previous Retain (a route whose rate limit was removed), and of each other route keeps
// only the limiter Limiter returned last. Call it after a new table is in force, with the names of
// its routes. A Redis client that no remaining limiter uses closes after a grace period, so that
// requests still running on the previous table finish their calls.
func (s *Store) Retain(routes map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	used := map[*redisClient]bool{}
	for route, list := range s.limiters {
		if !routes[route] || !s.requested[route] {
			delete(s.limiters, route)
			continue
		}
		l := list[len(list)-1]
		s.limiters[route] = []*Limiter{l}
		if l.global != nil {
			used[l.global.client] = true
		}
	}
	for name, sq := range s.quotas {
		if !routes[name] || !s.requested[name] {
			delete(s.quotas, name)
			continue
		}
		used[sq.q.client] = true
	}
	for key, c := range s.clients {
		if used[c] {
			continue
		}
		delete(s.clients, key)
		r := &retiringClient{client: c}
		r.timer = time.AfterFunc(s.grace, func() { s.closeRetired(key, r) })
		s.retiring[key] = r
	}
	clear(s.requested)
}

// closeRetired closes r's client when it is still retiring under key.
func (s *Store) closeRetired(key clientKey, r *retiringClient) {
	s.mu.Lock()
	mine := s.retiring[key] == r
	if mine {
		delete(s.retiring, key)
	}
	s.mu.Unlock()
	if mine {
		r.client.close()
	}
}

// Close closes every Redis client at once and forgets every limiter. Limiters still in use
// then fail their global limit (open or closed, as configured); Limiter returns an error.
func (s *Store) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for key, r := range s.retiring {
		r.timer.Stop()
		r.client.close()
		delete(s.retiring, key)
	}
	for key, c := range s.clients {
		c.close()
		delete(s.clients, key)
	}
	s.limiters = map[string][]*Limiter{}
	s.quotas = map[string]*storedQuota{}
}

// report passes a decision to OnDecision.
func (s *Store) report(route, decision string) {
	if s.onDecision != nil {
		s.onDecision(route, decision)
	}
}
