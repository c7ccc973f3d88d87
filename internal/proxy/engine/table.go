package engine

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/mesh/edgectx"
	"github.com/meshgate/meshgate/internal/observe/metrics"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/pathnorm"
	"github.com/meshgate/meshgate/internal/proxy/router"
)

// Table is one compiled, immutable config: what every request that starts while it is current
// runs against.
type Table struct {
	// Version counts accepted configs in this process, from 1.
	Version uint64
	// Loaded is when the table was swapped in.
	Loaded time.Time
	// Config is the config the table was compiled from.
	Config *config.Config

	listeners map[string]*listenerTable
	services  map[string]*service
	budgets   map[budgetKey]*retryBudget
	sec       *security
	tracing   *tracing // nil: tracing is off
	// edge signs and verifies the edge context; rec says which listeners are the edge.
	edge *edgectx.Key
	rec  *Recorder
	reg  *metrics.Registry
	// pending are the endpoint updates of running services that Apply makes when it accepts the
	// table; Apply clears it.
	pending []endpointUpdate
}

// listenerTable is what one listener's requests are matched and served with.
type listenerTable struct {
	name    string
	router  *router.Table
	routes  []*route
	trusted []netip.Prefix
	paths   pathnorm.Options
	maxBody int64
	// internal are the request headers clients may not send, removed before routing.
	internal []string
	// maxActive sheds requests beyond this many at once (0: no limit); active counts them and is
	// shared by every table while the listener keeps its name.
	maxActive int64
	active    *atomic.Int64
}

// serve runs one exchange through the listener's preprocessing, router and route chain.
func (t *Table) serve(x *proxy.Exchange) error {
	lt := t.listeners[x.Listener]
	if lt == nil {
		return proxy.Fail(404, proxy.ReasonNoRoute, fmt.Errorf("engine: listener %q has no routes", x.Listener))
	}
	if lt.maxActive > 0 {
		n := lt.active.Add(1)
		defer lt.active.Add(-1)
		if n > lt.maxActive {
			return proxy.Fail(503, proxy.ReasonOverloaded, errOverloaded)
		}
	}
	lt.prepare(x)
	t.edgeIn(x)
	norm, err := pathnorm.Normalize(x.Req.Path, lt.paths)
	if err != nil {
		return proxy.Fail(400, proxy.ReasonBadPath, err)
	}
	x.Req.Path = norm
	if lt.maxBody >= 0 && x.Req.ContentLength > lt.maxBody {
		return proxy.Fail(413, proxy.ReasonBodyTooLarge, fmt.Errorf("engine: content-length %d exceeds %d", x.Req.ContentLength, lt.maxBody))
	}
	// Routes match the path without ";parameters" in its segments, as authorization rules do:
	// an upstream that strips them must not be reached through "/admin;x" by a route other than
	// the one for "/admin". The path forwarded keeps them.
	in := router.Input{Host: x.Req.Host, Path: pathnorm.WithoutParams(norm), Method: x.Req.Method, Header: x.Req.Header, Query: x.Req.Query}
	res, ok := lt.router.Match(&in)
	if !ok {
		return proxy.Fail(404, proxy.ReasonNoRoute, errNoRoute)
	}
	r := lt.routes[res.Route]
	x.Route = r.name
	x.MatchedPrefix = res.Prefix
	if r.hasTimeout {
		if r.timeout > 0 {
			x.Deadline = x.Start.Add(r.timeout)
		} else {
			x.Deadline = time.Time{}
		}
	}
	applyClientDeadline(x)
	x.StreamIdle = r.streamIdle
	if r.maxBody > 0 && x.Body != nil {
		if x.Req.ContentLength > r.maxBody {
			return proxy.Fail(413, proxy.ReasonBodyTooLarge, fmt.Errorf("engine: content-length %d exceeds the route's %d", x.Req.ContentLength, r.maxBody))
		}
		if x.Req.ContentLength < 0 {
			x.Body = &limitedBody{r: x.Body, left: r.maxBody}
		}
	}
	return r.handler.Serve(x)
}

// limitedBody fails a request body of unknown length once it passes a route's limit.
type limitedBody struct {
	r    io.Reader
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, proxy.Fail(413, proxy.ReasonBodyTooLarge, errRouteBodyLimit)
	}
	return n, err
}

var errRouteBodyLimit = errors.New("engine: the request body exceeds the route's limit")

var (
	errNoRoute    = errors.New("engine: no route matched")
	errOverloaded = errors.New("engine: the listener is serving its maximum of active requests")
)
