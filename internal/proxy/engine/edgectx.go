package engine

import (
	"errors"
	"time"

	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/proxy"
)

// SetEdgeKey gives the engine the mesh's edge context key: a gateway signs the edge context of
// the calls it makes to mesh services, a sidecar verifies it. Call it before the first Apply;
// the key's value may change later (Key.Set).
func (e *Engine) SetEdgeKey(k *edgectx.Key) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.edge = k
}

// edgeIn handles the edge context header of an arriving request: at the edge nobody outside may
// send one; at a sidecar a verified one tells who the request is for, and anything else is
// dropped (and counted).
func (t *Table) edgeIn(x *proxy.Exchange) {
	dir := "edge"
	if t.rec != nil && t.rec.Direction != nil {
		dir = t.rec.Direction(x.Listener)
	}
	h := &x.Req.Header
	if dir == "edge" {
		x.AtEdge = true
		h.Del(edgectx.Header)
		return
	}
	v, ok := h.Get(edgectx.Header)
	if !ok {
		return
	}
	if t.edge == nil {
		h.Del(edgectx.Header)
		return
	}
	c, err := t.edge.Verify(v, "", time.Now())
	if err != nil {
		h.Del(edgectx.Header)
		t.reg.EdgeContextRejected.WithLabelValues(edgeReason(err)).Inc()
		return
	}
	x.EdgeConsumer, x.EdgePlan, x.EdgeRoute = c.Consumer, c.Plan, c.Route
}

// edgeReason is the metric label of a rejected edge context.
func edgeReason(err error) string {
	switch {
	case errors.Is(err, edgectx.ErrSignature):
		return "bad_signature"
	case errors.Is(err, edgectx.ErrExpired):
		return "expired"
	case errors.Is(err, edgectx.ErrNoKey):
		return "no_key"
	case errors.Is(err, edgectx.ErrOtherID):
		return "other_request"
	}
	return "malformed"
}

// signEdge puts the edge context on a call the gateway makes to a mesh service.
func signEdge(k *edgectx.Key, x *proxy.Exchange) {
	if k == nil || !x.AtEdge || !k.Has() {
		return
	}
	c := edgectx.Context{Route: x.Route, RequestID: x.ID}
	if id := x.Identity; id != nil {
		c.Consumer, c.Plan = id.Consumer, id.Plan
	}
	x.Req.Header.Set(edgectx.Header, k.Sign(c, time.Now()))
}
