package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/control/push"
)

// round is one measured change: the proxies record when they first hold a snapshot in which
// service's resource contains marker (or no longer does, when present is false).
type round struct {
	key     string // "service/NAME"
	marker  []byte // `"IP:` of the marker workload's endpoint address
	present bool
	t0      time.Time
	seen    []atomic.Int64 // per proxy: nanoseconds after t0, 0 while not seen
	count   atomic.Int64
}

// fleet is the simulated proxies.
type fleet struct {
	n       int
	started time.Time
	first   []atomic.Int64 // per proxy: nanoseconds after started of the first snapshot
	ready   atomic.Int64
	pushes  atomic.Int64 // Apply calls, the initial snapshot included
	cur     atomic.Pointer[round]
	conns   []*grpc.ClientConn
	wg      sync.WaitGroup
}

func newFleet(n int) *fleet {
	return &fleet{n: n, first: make([]atomic.Int64, n), conns: make([]*grpc.ClientConn, n)}
}

// apply is proxy i's Apply: it records the first snapshot and the round's change.
func (f *fleet) apply(i int, s *push.Snapshot) {
	f.pushes.Add(1)
	if f.first[i].Load() == 0 {
		f.first[i].Store(max(int64(time.Since(f.started)), 1))
		f.ready.Add(1)
	}
	r := f.cur.Load()
	if r == nil || r.seen[i].Load() != 0 {
		return
	}
	res := s.Resources[r.key]
	if res == nil {
		return
	}
	if bytes.Contains(res.GetBody(), r.marker) == r.present {
		if r.seen[i].CompareAndSwap(0, max(int64(time.Since(r.t0)), 1)) {
			r.count.Add(1)
		}
	}
}

// nodeOf is proxy i's identity: the first half are sidecars of the services in turn, the rest
// gateways.
func nodeOf(i, n int, services []string, ns string) *controlv1.Node {
	id := "proxy-" + strconv.Itoa(i)
	if i < n/2 {
		return &controlv1.Node{Id: id, Role: push.RoleSidecar, Service: services[i%len(services)], Namespace: ns, BuildVersion: "controlscale"}
	}
	return &controlv1.Node{Id: id, Role: push.RoleGateway, Service: gatewayService, Namespace: ns, BuildVersion: "controlscale"}
}

// start connects all proxies, at most inflight at a time between dialling and the first
// snapshot, and returns once every one has its first snapshot or ctx ends.
func (f *fleet) start(ctx context.Context, p *plane, certs map[string]*tls.Certificate, services []string, ns string, inflight int) error {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sem := make(chan struct{}, inflight)
	f.started = time.Now()
	for i := 0; i < f.n; i++ {
		node := nodeOf(i, f.n, services, ns)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		conn, err := p.dial(certs[node.GetService()])
		if err != nil {
			return err
		}
		f.conns[i] = conn
		var once sync.Once
		release := func() { once.Do(func() { <-sem }) }
		c := push.NewClient(push.ClientOptions{
			Node: node, Conn: conn, Log: quiet,
			Apply: func(s *push.Snapshot) error {
				f.apply(i, s)
				release()
				return nil
			},
		})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer release()
			_ = c.Run(ctx)
		}()
	}
	for f.ready.Load() < int64(f.n) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// close waits for the proxies (their ctx must have ended) and closes their connections.
func (f *fleet) close() {
	f.wg.Wait()
	for _, c := range f.conns {
		if c != nil {
			_ = c.Close()
		}
	}
}
