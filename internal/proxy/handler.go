package proxy

// Handler is one step of the request path. It either answers the exchange itself (writing through
// x.W) or returns an error; it never writes an error response itself. The one place that does is the
// engine, which turns a returned *Error into a response with a reason code.
type Handler interface {
	Serve(x *Exchange) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(x *Exchange) error

// Serve calls f(x).
func (f HandlerFunc) Serve(x *Exchange) error { return f(x) }

// Middleware wraps a Handler with one concern (a filter, a policy).
type Middleware func(next Handler) Handler

// Chain wraps h with mws so that mws[0] runs first.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
