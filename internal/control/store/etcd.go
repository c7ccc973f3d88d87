package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// EtcdOptions configures OpenEtcd.
type EtcdOptions struct {
	// Endpoints are the etcd client URLs ("https://10.0.0.1:2379"). Required.
	Endpoints []string
	// Prefix is put before every key the store writes, so several meshes can share one etcd;
	// a "/" is appended when it does not end in one. Default "/meshgate/".
	Prefix string
	// DialTimeout bounds connecting to etcd. Default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds every operation; an etcd that does not answer within it makes the
	// operation fail with ErrUnavailable. Default 5s.
	RequestTimeout time.Duration
	// TLS, when set, is the client TLS configuration (CA, client certificate).
	TLS *tls.Config
	// Username and Password authenticate to an etcd with authentication enabled.
	Username string
	Password string
	// HistoryLimit is how many config revisions are kept; older ones are pruned on Apply.
	// Default 100.
	HistoryLimit int
	// SessionTTL is the lease of a leader's election session: when a leader stops keeping it
	// alive, another replica takes over after at most this long. Whole seconds. Default 10s.
	SessionTTL time.Duration
	// Registerer, when set, receives the store's metrics
	// (meshgate_control_store_operations_total, meshgate_control_store_up).
	Registerer prometheus.Registerer
	// Log receives watch reconnections and cleanup failures. Default: discarded.
	Log *slog.Logger
}

// Etcd is the replicated Store: config revisions, workloads on leases and named values in etcd
// under one prefix, shared by every control-plane replica using the same etcd and prefix. It
// also elects the leader among them.
type Etcd struct {
	cli  *clientv3.Client
	opts EtcdOptions
	m    *metrics
	log  *slog.Logger

	// ctx ends when the store closes; background loops and sessions derive from it.
	ctx    context.Context
	cancel context.CancelFunc
	bg     goroutines
}

var _ Store = (*Etcd)(nil)

// OpenEtcd connects to etcd and checks that it answers within ctx and RequestTimeout; an
// unreachable etcd gives an error wrapping ErrUnavailable.
func OpenEtcd(ctx context.Context, opts EtcdOptions) (*Etcd, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("store: etcd: no endpoints")
	}
	if opts.Prefix == "" {
		opts.Prefix = "/meshgate/"
	}
	if !strings.HasSuffix(opts.Prefix, "/") {
		opts.Prefix += "/"
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 5 * time.Second
	}
	if opts.SessionTTL < time.Second {
		opts.SessionTTL = 10 * time.Second
	}
	opts.HistoryLimit = historyLimit(opts.HistoryLimit)
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(opts.Registerer, "etcd")
	if err != nil {
		return nil, fmt.Errorf("store: metrics: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		// Detect a dead connection so watches move on; etcd refuses pings more often than 5s.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  opts.TLS,
		Username:             opts.Username,
		Password:             opts.Password,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			// Reconnect soon after etcd comes back rather than after grpc's default 2 minutes.
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: opts.DialTimeout,
		})},
	})
	if err != nil {
		if unavailable(err) {
			return nil, fmt.Errorf("store: etcd %v: %w: %w", opts.Endpoints, ErrUnavailable, err)
		}
		return nil, fmt.Errorf("store: etcd %v: %w", opts.Endpoints, err)
	}
	e := &Etcd{cli: cli, opts: opts, m: m, log: log}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.bg.init()
	rctx, cancel := e.request(ctx)
	_, err = cli.Get(rctx, e.key(keyCurrent))
	cancel()
	if err = e.fail(ctx, "open", err); err != nil {
		e.cancel()
		_ = cli.Close()
		return nil, fmt.Errorf("%w (endpoints %v)", err, opts.Endpoints)
	}
	return e, nil
}

// Key names under the prefix.
const (
	keyCurrent      = "config/current"
	keyRevisions    = "config/rev/"
	keyWorkloads    = "workloads/"
	keyValues       = "keys/"
	keyElection     = "election/"
	revisionKeyForm = "%020d"
)

// key returns the full etcd key of a name under the prefix.
func (e *Etcd) key(name string) string { return e.opts.Prefix + name }

// revisionKey returns the etcd key of a config version.
func (e *Etcd) revisionKey(v uint64) string {
	return e.opts.Prefix + keyRevisions + fmt.Sprintf(revisionKeyForm, v)
}

// request bounds one operation by RequestTimeout.
func (e *Etcd) request(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opts.RequestTimeout)
}

// Close ends the watches and elections (a leader resigns) and closes the client.
func (e *Etcd) Close() error {
	e.cancel()
	if !e.bg.close() {
		return nil
	}
	if err := e.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("store: etcd close: %w", err)
	}
	return nil
}
