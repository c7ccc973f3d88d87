package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/atomicfile"
)

// ClientOptions configure a proxy's push Client.
type ClientOptions struct {
	// Node describes the proxy; it is sent on every stream. Required for Run.
	Node *controlv1.Node
	// Conn is the connection to the control plane. Required for Run.
	Conn grpc.ClientConnInterface
	// Apply runs a whole new state. An error refuses it: the control plane is sent a NACK with
	// the error's text and the client keeps its previous snapshot. Default: accept everything.
	Apply func(s *Snapshot) error
	// CacheFile is where the last applied snapshot is kept (with a checksum) for a restart
	// while the control plane is unreachable. Default "": no cache.
	CacheFile string
	// Log receives the client's logs. Default slog.Default().
	Log *slog.Logger
	// Backoff paces reconnection after a stream fails.
	Backoff Backoff
}

// Backoff is an exponential backoff with jitter: each wait is drawn from the upper half of the
// current delay, which doubles after every failed attempt up to Max.
type Backoff struct {
	// Initial is the first delay. Default 500ms.
	Initial time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
}

// healthyStream is how long a stream must have lasted for the backoff to start over.
const healthyStream = 10 * time.Second

// Client is a proxy's end of the config push: it subscribes, merges and applies what it is
// sent, answers with an ACK or NACK, and keeps the last applied snapshot on disk.
type Client struct {
	opts      ClientOptions
	log       *slog.Logger
	mu        sync.Mutex
	cur       *Snapshot
	connected atomic.Bool
}

// NewClient returns a client; Run subscribes.
func NewClient(opts ClientOptions) *Client {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Apply == nil {
		opts.Apply = func(*Snapshot) error { return nil }
	}
	if opts.Backoff.Initial <= 0 {
		opts.Backoff.Initial = 500 * time.Millisecond
	}
	if opts.Backoff.Max <= 0 {
		opts.Backoff.Max = 30 * time.Second
	}
	opts.Backoff.Max = max(opts.Backoff.Max, opts.Backoff.Initial)
	return &Client{opts: opts, log: opts.Log}
}

// Current returns the snapshot the client holds: the last one it applied, or the cached one it
// resumed from; nil before either.
func (c *Client) Current() *Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// Connected reports whether a stream to the control plane is open.
func (c *Client) Connected() bool { return c.connected.Load() }

// LoadCache reads the cached snapshot. It returns nil and no error without a CacheFile, an
// error wrapping os.ErrNotExist when there is no cache yet, and one wrapping ErrCorruptCache
// when the file is truncated, corrupted or altered. It does not apply the snapshot.
func (c *Client) LoadCache() (*Snapshot, error) {
	if c.opts.CacheFile == "" {
		return nil, nil
	}
	data, err := os.ReadFile(c.opts.CacheFile)
	if err != nil {
		return nil, fmt.Errorf("push: read the cached config: %w", err)
	}
	s, err := decodeCache(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, c.opts.CacheFile)
	}
	return s, nil
}

// saveCache writes s to the cache file, whole or not at all.
func (c *Client) saveCache(s *Snapshot) error {
	if c.opts.CacheFile == "" {
		return nil
	}
	data, err := encodeCache(s)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(c.opts.CacheFile, data, 0o600); err != nil {
		return fmt.Errorf("push: cache the config: %w", err)
	}
	return nil
}

// Run subscribes and keeps the subscription until ctx ends, reconnecting with backoff after a
// failure and resuming from the versions it holds (the cache, when nothing was applied yet). It
// returns nil once ctx ends.
func (c *Client) Run(ctx context.Context) error {
	if c.opts.Conn == nil || c.opts.Node == nil {
		return errors.New("push: a client needs a connection and a node")
	}
	c.mu.Lock()
	if c.cur == nil {
		switch s, err := c.LoadCache(); {
		case err == nil:
			c.cur = s
		case !errors.Is(err, os.ErrNotExist):
			c.log.Warn("push: the cached config is unusable; asking for everything", "error", err)
		}
	}
	c.mu.Unlock()
	delay := c.opts.Backoff.Initial
	for {
		start := time.Now()
		err := c.session(ctx)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(start) >= healthyStream {
			delay = c.opts.Backoff.Initial
		}
		wait := delay/2 + rand.N(delay/2+1)
		c.log.Warn("push: config stream ended; reconnecting", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, c.opts.Backoff.Max)
	}
}

// session runs one stream until it fails or ctx ends.
func (c *Client) session(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := controlv1.NewDiscoveryClient(c.opts.Conn).Stream(sctx)
	if err != nil {
		return err
	}
	first := &controlv1.DiscoveryRequest{Node: c.opts.Node}
	if cur := c.Current(); cur != nil {
		first.VersionInfo, first.ResourceVersions = cur.Version, cur.versions()
	}
	if err := stream.Send(first); err != nil {
		return recvError(stream, err)
	}
	c.connected.Store(true)
	c.log.Debug("push: subscribed", "version", first.VersionInfo, "resources", len(first.ResourceVersions))
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if err := stream.Send(c.handle(resp)); err != nil {
			return recvError(stream, err)
		}
	}
}

// handle merges and applies one response and returns the ACK or NACK to send.
func (c *Client) handle(resp *controlv1.DiscoveryResponse) *controlv1.DiscoveryRequest {
	cur := c.Current()
	next, err := merge(cur, resp)
	if err == nil {
		err = c.opts.Apply(next)
	}
	if err != nil {
		detail := err.Error()
		if detail == "" {
			detail = "refused"
		}
		if len(detail) > maxErrorDetail {
			detail = detail[:maxErrorDetail]
		}
		held := ""
		if cur != nil {
			held = cur.Version
		}
		c.log.Warn("push: config refused; keeping the previous one", "version", resp.GetVersionInfo(), "kept", held, "error", detail)
		return &controlv1.DiscoveryRequest{VersionInfo: held, ResponseNonce: resp.GetNonce(), ErrorDetail: detail}
	}
	c.mu.Lock()
	c.cur = next
	c.mu.Unlock()
	if err := c.saveCache(next); err != nil {
		c.log.Warn("push: the applied config is not cached", "version", next.Version, "error", err)
	}
	c.log.Debug("push: config applied", "version", next.Version, "changed", len(resp.GetResources()), "removed", len(resp.GetRemoved()), "full", resp.GetFull())
	return &controlv1.DiscoveryRequest{VersionInfo: next.Version, ResponseNonce: resp.GetNonce()}
}

// recvError returns the stream's real error when Send failed with io.EOF (gRPC reports the
// status on Recv).
func recvError(stream controlv1.Discovery_StreamClient, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for range 16 {
		if _, rerr := stream.Recv(); rerr != nil {
			return rerr
		}
	}
	return err
}
