package push

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
)

// stream is one proxy's subscription, run by the gRPC handler goroutine.
type stream struct {
	s       *Server
	ss      controlv1.Discovery_StreamServer
	node    *controlv1.Node
	p       *proxy
	started time.Time

	// What the proxy holds: held (a view it ACKed, or one equal to what it resumed with), else
	// heldVers (the versions it resumed with), else nothing.
	held     *view
	heldVers map[string]string
	// refused is the digest of the content the proxy last NACKed: it is not sent again.
	refused string

	inflight *inflight
	nonce    uint64
}

// inflight is the response awaiting the proxy's answer.
type inflight struct {
	nonce       string
	view        *view
	versionInfo string
}

// stream serves one Discovery.Stream.
func (s *Server) stream(ss controlv1.Discovery_StreamServer) error {
	if !s.enter() {
		return status.Error(codes.Unavailable, "push: control plane shutting down")
	}
	defer s.wg.Done()
	ctx := ss.Context()

	// One goroutine receives (gRPC allows one receiver beside one sender); it stops when the
	// handler returns, which cancels the stream.
	reqs := make(chan *controlv1.DiscoveryRequest)
	recvErr := make(chan error, 1)
	quit := make(chan struct{})
	defer close(quit)
	if !s.enter() {
		return status.Error(codes.Unavailable, "push: control plane shutting down")
	}
	go func() {
		defer s.wg.Done()
		for {
			req, err := ss.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-quit:
				return
			}
		}
	}()

	var first *controlv1.DiscoveryRequest
	select {
	case first = <-reqs:
	case err := <-recvErr:
		return err
	case <-s.done:
		return status.Error(codes.Unavailable, "push: control plane shutting down")
	case <-ctx.Done():
		return ctx.Err()
	}
	node := first.GetNode()
	if node == nil || node.GetId() == "" {
		return status.Error(codes.InvalidArgument, "push: the first message must carry a node with an id")
	}
	sc, err := scopeOf(node)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	addr := ""
	if pr, ok := peer.FromContext(ctx); ok && pr.Addr != nil {
		addr = pr.Addr.String()
	}
	if s.opts.Authorize != nil {
		if err := s.opts.Authorize(ctx, node); err != nil {
			s.log.Warn("push: subscription refused", "node", node.GetId(), "role", node.GetRole(),
				"service", node.GetService(), "namespace", node.GetNamespace(), "peer", addr, "error", err)
			if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.OK {
				return st.Err()
			}
			return status.Error(codes.PermissionDenied, "push: "+err.Error())
		}
	}
	now := time.Now()
	p := &proxy{key: sc.key(), scope: sc, st: ProxyStatus{
		ID: node.GetId(), Role: node.GetRole(), Service: node.GetService(), Namespace: node.GetNamespace(),
		Peer: addr, ConnectedSince: now,
	}}
	id := s.addProxy(p)
	defer s.removeProxy(id)
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	s.log.Debug("push: proxy subscribed", "node", node.GetId(), "role", node.GetRole(), "peer", addr)

	st := &stream{s: s, ss: ss, node: node, p: p, started: now}
	st.resume(first)
	return st.run(ctx, reqs, recvErr)
}

// run sends the proxy each new state it has not got, one response at a time, and takes its
// answers, until the stream or the server ends.
func (st *stream) run(ctx context.Context, reqs <-chan *controlv1.DiscoveryRequest, recvErr <-chan error) error {
	s := st.s
	var (
		gen    *generation
		ackDue *time.Timer
		dueC   <-chan time.Time
	)
	defer func() {
		if ackDue != nil {
			ackDue.Stop()
		}
	}()
	for {
		if st.inflight == nil {
			if g := s.cur.Load(); g != gen {
				gen = g
				if err := st.push(g); err != nil {
					return err
				}
				if st.inflight != nil {
					if ackDue == nil {
						ackDue = time.NewTimer(s.opts.AckTimeout)
					} else {
						ackDue.Reset(s.opts.AckTimeout)
					}
					dueC = ackDue.C
				}
			}
		}
		var next <-chan struct{}
		if st.inflight == nil {
			next = gen.next // wait for a newer state only when nothing is in flight
		}
		select {
		case <-s.done:
			return status.Error(codes.Unavailable, "push: control plane shutting down")
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case req := <-reqs:
			if st.answer(req) {
				ackDue.Stop()
				dueC = nil
			}
		case <-next:
		case <-dueC:
			dueC = nil
			s.log.Warn("push: proxy has not answered a response", "node", st.node.GetId(),
				"version", st.inflight.versionInfo, "after", s.opts.AckTimeout)
		}
	}
}

// resume records what the proxy says it holds on its first message.
func (st *stream) resume(first *controlv1.DiscoveryRequest) {
	if len(first.GetResourceVersions()) == 0 {
		return
	}
	st.heldVers = first.GetResourceVersions()
	st.p.update(func(ps *ProxyStatus) {
		ps.VersionSent, ps.VersionAcked = first.GetVersionInfo(), first.GetVersionInfo()
	})
}

// push sends the proxy what differs between what it holds and g, if anything.
func (st *stream) push(g *generation) error {
	if g.ix == nil {
		return nil // no state yet
	}
	v := g.view(st.s, st.p.key, st.p.scope)
	if v.digest == st.refused {
		return nil // the proxy refused exactly this; it keeps its last good state
	}
	resp := &controlv1.DiscoveryResponse{VersionInfo: g.versionInfo}
	switch {
	case st.held != nil:
		if v.digest == st.held.digest {
			st.held = v
			return nil
		}
		d := v.deltaFrom(st.held)
		resp.Resources, resp.Removed = d.changed, d.removed
	case st.heldVers != nil:
		d := v.deltaFromVersions(st.heldVers)
		if d.empty() {
			st.held, st.heldVers = v, nil
			return nil
		}
		resp.Resources, resp.Removed = d.changed, d.removed
	default:
		resp.Resources, resp.Full = v.sorted, true
	}
	st.nonce++
	resp.Nonce = strconv.FormatUint(st.nonce, 10)
	if err := st.ss.Send(resp); err != nil {
		return err
	}
	now := time.Now()
	st.s.metrics.responses.Inc()
	if g.updated.After(st.started) {
		st.s.metrics.duration.Observe(now.Sub(g.updated).Seconds())
	}
	st.inflight = &inflight{nonce: resp.Nonce, view: v, versionInfo: g.versionInfo}
	st.p.update(func(ps *ProxyStatus) {
		ps.VersionSent = g.versionInfo
		ps.PendingSince = &now
	})
	return nil
}

// answer takes an ACK or NACK; it reports whether it answered the response in flight (a stale
// nonce is ignored).
func (st *stream) answer(req *controlv1.DiscoveryRequest) bool {
	in := st.inflight
	if in == nil || req.GetResponseNonce() != in.nonce {
		return false
	}
	st.inflight = nil
	if detail := req.GetErrorDetail(); detail != "" {
		if len(detail) > maxErrorDetail {
			detail = detail[:maxErrorDetail]
		}
		st.refused = in.view.digest
		st.s.metrics.nacks.Inc()
		st.s.log.Warn("push: proxy refused a config", "node", st.node.GetId(), "version", in.versionInfo, "error", detail)
		now := time.Now()
		st.p.update(func(ps *ProxyStatus) {
			ps.PendingSince = nil
			ps.LastNACK = &NACK{Version: in.versionInfo, Error: detail, Time: now}
		})
		return true
	}
	st.held, st.heldVers, st.refused = in.view, nil, ""
	st.p.update(func(ps *ProxyStatus) {
		ps.PendingSince = nil
		ps.VersionAcked = in.versionInfo
	})
	return true
}
