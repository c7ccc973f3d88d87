// Package upstream forwards exchanges to service endpoints: a pooled HTTP/1.1 transport written for
// the request path's cost, and an HTTP/2 transport (h2c, gRPC) on golang.org/x/net/http2.
package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
)

// Transport forwards one exchange to one endpoint and streams the response downstream.
//
// Forward returns nil when the whole response was delivered. An error returned before the response
// head was written downstream is a *proxy.Error the engine turns into a response; after that the
// engine can only abort the downstream stream.
type Transport interface {
	Forward(x *proxy.Exchange, addr string) error
	// Close releases every pooled connection. In-flight exchanges finish first.
	Close()
}

// Hooks report transport events to metrics. Any field may be nil.
type Hooks struct {
	// ConnOpened is called when a connection to an endpoint is established.
	ConnOpened func()
	// ConnClosed is called when such a connection is closed.
	ConnClosed func()
	// ConnectFailed is called when a connection attempt fails.
	ConnectFailed func()
}

func (h *Hooks) opened() {
	if h.ConnOpened != nil {
		h.ConnOpened()
	}
}

func (h *Hooks) closed() {
	if h.ConnClosed != nil {
		h.ConnClosed()
	}
}

func (h *Hooks) connectFailed() {
	if h.ConnectFailed != nil {
		h.ConnectFailed()
	}
}

// classify turns an error met while talking to an upstream into the response it deserves.
func classify(err error, connecting bool) *proxy.Error {
	var pe *proxy.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		if connecting {
			return proxy.Fail(503, proxy.ReasonUpstreamUnavailable, err)
		}
		return proxy.Fail(504, proxy.ReasonUpstreamTimeout, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if connecting {
			return proxy.Fail(503, proxy.ReasonUpstreamUnavailable, err)
		}
		return proxy.Fail(504, proxy.ReasonUpstreamTimeout, err)
	}
	if errors.Is(err, context.Canceled) {
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	if connecting {
		return proxy.Fail(503, proxy.ReasonUpstreamUnavailable, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return proxy.Fail(502, proxy.ReasonUpstreamReset, err)
	}
	return proxy.Fail(502, proxy.ReasonUpstreamReset, err)
}

// armDeadline sets uc's deadline for the next read or write of exchange x: the exchange's
// deadline (none when it has none), or sooner when the stream idle timeout would pass first.
func armDeadline(uc *upConn, x *proxy.Exchange) {
	d := x.Deadline
	if x.StreamIdle > 0 {
		if idle := time.Now().Add(x.StreamIdle); d.IsZero() || idle.Before(d) {
			d = idle
		}
	}
	uc.dl.Set(uc.c, d)
}

// idleTimeout turns a timeout that struck before the exchange's deadline, and so came from the
// stream idle timeout, into its own reason.
func idleTimeout(x *proxy.Exchange, err error) error {
	if err == nil || x.StreamIdle <= 0 {
		return err
	}
	var pe *proxy.Error
	if errors.As(err, &pe) && pe.Reason == proxy.ReasonUpstreamTimeout && (x.Deadline.IsZero() || time.Now().Before(x.Deadline)) {
		return proxy.Fail(504, proxy.ReasonStreamIdleTimeout, pe.Err)
	}
	return err
}

// downstreamError marks an error that came from reading the client's request body, so that it is
// not blamed on the upstream.
type downstreamError struct{ err error }

func (e *downstreamError) Error() string { return "reading request body: " + e.err.Error() }
func (e *downstreamError) Unwrap() error { return e.err }

// bodyReader wraps the downstream body so read errors are recognisable and bytes are counted.
// Each read that moves bytes tells progress, when set, that the stream is not idle.
type bodyReader struct {
	r        io.Reader
	x        *proxy.Exchange
	progress func()
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.x.BytesIn += int64(n)
	if n > 0 && b.progress != nil {
		b.progress()
	}
	if err != nil && err != io.EOF {
		var pe *proxy.Error
		if errors.As(err, &pe) {
			return n, pe
		}
		return n, &downstreamError{err}
	}
	return n, err
}

// asDownstream converts an error from reading the request body into its response.
func asDownstream(err error) (*proxy.Error, bool) {
	var pe *proxy.Error
	if errors.As(err, &pe) {
		return pe, true
	}
	var de *downstreamError
	if errors.As(err, &de) {
		var ne net.Error
		if errors.As(de.err, &ne) && ne.Timeout() {
			return proxy.Fail(408, proxy.ReasonRequestTimeout, err), true
		}
		return proxy.Fail(400, proxy.ReasonDownstreamReset, err), true
	}
	return nil, false
}
