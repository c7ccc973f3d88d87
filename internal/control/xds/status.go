package xds

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// ClientStatus is what one xDS stream has been sent and has answered, for one resource type.
type ClientStatus struct {
	// StreamID identifies the stream within this server.
	StreamID int64
	// NodeID is the node id the client sent (node.id in its bootstrap).
	NodeID string
	// TypeURL is the resource type, for example
	// "type.googleapis.com/envoy.config.cluster.v3.Cluster".
	TypeURL string
	// Delta is true for an incremental (delta) stream.
	Delta bool
	// Opened is when the stream opened.
	Opened time.Time
	// SentVersion is the version of the last response sent for the type.
	SentVersion string
	// AckedVersion is the last version the client accepted (ACK), or "" before its first ACK.
	AckedVersion string
	// NACKs counts the responses of the type the client refused.
	NACKs int
	// LastNACK is the error detail of the last refusal, and LastNACKVersion the version refused.
	LastNACK        string
	LastNACKVersion string
	// LastNACKAt is when the last refusal arrived; zero when there was none.
	LastNACKAt time.Time
}

// tracker implements go-control-plane's server callbacks: it follows every stream's node and,
// per resource type, the versions sent, ACKed and NACKed.
//
// It also stops the snapshot cache's resend loop on a NACK: a NACK carries the last version the
// client accepted, which differs from the cache's, so the cache would send the refused snapshot
// again at once, forever. On a NACK of the last response sent the tracker rewrites the request's
// version to the refused one, so the cache waits for the next snapshot instead.
type tracker struct {
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	streams map[int64]*streamState
}

type streamState struct {
	node   string
	delta  bool
	opened time.Time
	types  map[string]*typeState
}

type typeState struct {
	sentNonce, sentVersion string
	ClientStatus
}

func newTracker(log *slog.Logger, m *metrics) *tracker {
	return &tracker{log: log, metrics: m, streams: make(map[int64]*streamState)}
}

func (t *tracker) open(id int64, delta bool) {
	t.mu.Lock()
	t.streams[id] = &streamState{delta: delta, opened: time.Now(), types: make(map[string]*typeState)}
	t.mu.Unlock()
	t.metrics.streams.Inc()
}

func (t *tracker) close(id int64) {
	t.mu.Lock()
	_, ok := t.streams[id]
	delete(t.streams, id)
	t.mu.Unlock()
	if ok {
		t.metrics.streams.Dec()
	}
}

// typeOf returns the stream's state for typeURL, noting the node when the request carries one.
// It must be called with t.mu held; it returns nil for an unknown stream.
func (t *tracker) typeOf(id int64, node *corev3.Node, typeURL string) (*streamState, *typeState) {
	st := t.streams[id]
	if st == nil {
		return nil, nil
	}
	if node.GetId() != "" {
		st.node = node.GetId()
	}
	ts := st.types[typeURL]
	if ts == nil {
		ts = &typeState{}
		st.types[typeURL] = ts
	}
	return st, ts
}

// request records an ACK or a NACK. It returns the refused version when the request NACKs the
// last response sent, "" otherwise.
func (t *tracker) request(id int64, node *corev3.Node, typeURL, version, nonce string, errDetail string, nack bool) string {
	t.mu.Lock()
	st, ts := t.typeOf(id, node, typeURL)
	if st == nil {
		t.mu.Unlock()
		return ""
	}
	refused := ""
	switch {
	case nack:
		ts.NACKs++
		ts.LastNACK = errDetail
		ts.LastNACKAt = time.Now()
		ts.LastNACKVersion = ""
		if nonce != "" && nonce == ts.sentNonce {
			ts.LastNACKVersion = ts.sentVersion
			refused = ts.sentVersion
		}
	case nonce != "" && nonce == ts.sentNonce:
		ts.AckedVersion = ts.sentVersion
	case nonce == "" && version != "":
		// A reconnecting client says which version it already holds.
		ts.AckedVersion = version
	}
	nodeID := st.node
	t.mu.Unlock()
	if nack {
		t.metrics.nacks.WithLabelValues(shortType(typeURL)).Inc()
		t.log.Warn("xds: client refused a response (NACK)",
			"node", nodeID, "stream", id, "type", shortType(typeURL), "version", refused, "error", errDetail)
	}
	return refused
}

// response records a response about to be sent.
func (t *tracker) response(id int64, typeURL, version, nonce string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ts := t.typeOf(id, nil, typeURL)
	if ts == nil {
		return
	}
	ts.sentNonce, ts.sentVersion = nonce, version
	ts.SentVersion = version
}

func (t *tracker) status() []ClientStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ClientStatus
	for id, st := range t.streams {
		for typeURL, ts := range st.types {
			cs := ts.ClientStatus
			cs.StreamID, cs.NodeID, cs.TypeURL, cs.Delta, cs.Opened = id, st.node, typeURL, st.delta, st.opened
			out = append(out, cs)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].StreamID != out[j].StreamID {
			return out[i].StreamID < out[j].StreamID
		}
		return out[i].TypeURL < out[j].TypeURL
	})
	return out
}

// OnStreamOpen implements the server callbacks.
func (t *tracker) OnStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id, false)
	return nil
}

// OnStreamClosed implements the server callbacks.
func (t *tracker) OnStreamClosed(id int64, _ *corev3.Node) { t.close(id) }

// OnStreamRequest implements the server callbacks; see tracker for the version rewrite.
func (t *tracker) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	nack := req.GetErrorDetail() != nil
	refused := t.request(id, req.GetNode(), req.GetTypeUrl(), req.GetVersionInfo(), req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), nack)
	if refused != "" {
		req.VersionInfo = refused
	}
	return nil
}

// OnStreamResponse implements the server callbacks.
func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	t.response(id, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce())
}

// OnDeltaStreamOpen implements the server callbacks.
func (t *tracker) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	t.open(id, true)
	return nil
}

// OnDeltaStreamClosed implements the server callbacks.
func (t *tracker) OnDeltaStreamClosed(id int64, _ *corev3.Node) { t.close(id) }

// OnStreamDeltaRequest implements the server callbacks.
func (t *tracker) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	t.request(id, req.GetNode(), req.GetTypeUrl(), "", req.GetResponseNonce(), req.GetErrorDetail().GetMessage(), req.GetErrorDetail() != nil)
	return nil
}

// OnStreamDeltaResponse implements the server callbacks.
func (t *tracker) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	t.response(id, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce())
}

// OnFetchRequest implements the server callbacks (REST fetches are not tracked).
func (t *tracker) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error { return nil }

// OnFetchResponse implements the server callbacks.
func (t *tracker) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}

// shortType names a type URL for metrics and logs: "listener", "route", "cluster", "endpoint",
// or the message name of another type.
func shortType(typeURL string) string {
	switch typeURL {
	case resource.ListenerType:
		return "listener"
	case resource.RouteType:
		return "route"
	case resource.ClusterType:
		return "cluster"
	case resource.EndpointType:
		return "endpoint"
	}
	if i := strings.LastIndexByte(typeURL, '.'); i >= 0 {
		return typeURL[i+1:]
	}
	return typeURL
}
