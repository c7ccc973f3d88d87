package engine

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// DefaultTraceServiceName is the service.name of a proxy's spans when the tracing block names
// none (a sidecar's config names its service).
const DefaultTraceServiceName = "meshgate-gateway"

// tracing is the OpenTelemetry tracer of a table whose config has a tracing block. A table
// without one has none, and its requests make no tracing call. A tracer outlives reloads while
// its settings are unchanged; a replaced one is shut down (its spans flushed) after the swap.
type tracing struct {
	key      tracingKey
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	prop     propagation.TextMapPropagator
	hops     sync.Pool // *hop
}

// tracingKey is what a tracer is built from.
type tracingKey struct {
	endpoint, protocol, serviceName string
	sampleRate                      float64
	timeout                         time.Duration
	insecure                        bool
}

// tracingGrace is how long a replaced tracer keeps recording the spans of requests that started
// on the old table before it is shut down.
const tracingGrace = 5 * time.Second

// tracingBatchTimeout is the longest a recorded span waits before it is exported.
const tracingBatchTimeout = time.Second

func keyOf(t *config.Tracing) tracingKey {
	k := tracingKey{endpoint: t.Endpoint, protocol: t.Protocol, serviceName: t.ServiceName, timeout: t.Timeout}
	if t.SampleRate != nil {
		k.sampleRate = *t.SampleRate
	}
	if t.Insecure != nil {
		k.insecure = *t.Insecure
	}
	if k.serviceName == "" {
		k.serviceName = DefaultTraceServiceName
	}
	return k
}

// tracingFor returns the tracer cfg asks for: nil when it has no tracing block, the running one
// when its settings are unchanged, else a new one. Apply holds e.mu.
func (e *Engine) tracingFor(cfg *config.Config) (*tracing, error) {
	if cfg.Telemetry == nil || cfg.Telemetry.Tracing == nil {
		return nil, nil
	}
	k := keyOf(cfg.Telemetry.Tracing)
	if old := e.table.Load(); old != nil && old.tracing != nil && old.tracing.key == k {
		return old.tracing, nil
	}
	tr, err := newTracing(k)
	if err != nil {
		return nil, fmt.Errorf("telemetry.tracing: %w", err)
	}
	return tr, nil
}

// newTracing builds a tracer provider exporting to the collector k names with OTLP.
func newTracing(k tracingKey) (*tracing, error) {
	target, err := config.ParseTracingEndpoint(k.endpoint)
	if err != nil {
		return nil, err
	}
	var exp sdktrace.SpanExporter
	switch k.protocol {
	case config.TracingHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(target.HostPort), otlptracehttp.WithTimeout(k.timeout)}
		if target.Path != "" && target.Path != "/" {
			opts = append(opts, otlptracehttp.WithURLPath(target.Path))
		}
		if k.insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(context.Background(), opts...)
	case config.TracingGRPC, "":
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(target.HostPort), otlptracegrpc.WithTimeout(k.timeout)}
		if k.insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(context.Background(), opts...)
	default:
		return nil, fmt.Errorf("unknown protocol %q", k.protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("exporter for %s: %w", k.endpoint, err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", k.serviceName))
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(tracingBatchTimeout), sdktrace.WithExportTimeout(k.timeout)),
		sdktrace.WithSampler(hopSampler{base: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(k.sampleRate))}),
		sdktrace.WithResource(res),
	)
	return &tracing{
		key: k, provider: p, tracer: p.Tracer("github.com/meshgate/meshgate"),
		prop: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}, nil
}

// shutdown flushes the tracer's recorded spans and stops its exporter, waiting at most its
// export timeout.
func (tr *tracing) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), tr.key.timeout+time.Second)
	defer cancel()
	return tr.provider.Shutdown(ctx)
}

// discardTracing shuts down the tracer of a table Apply refused, unless the running table shares
// it. Apply holds e.mu.
func (e *Engine) discardTracing(t *Table) {
	if t == nil || t.tracing == nil {
		return
	}
	if old := e.table.Load(); old != nil && old.tracing == t.tracing {
		return
	}
	_ = t.tracing.shutdown()
}

// retireTracing shuts down the tracer of the replaced table old unless the new table t kept it:
// after tracingGrace (requests that started on old finish their spans meanwhile), or at once when
// the engine closes. Close waits for it.
func (e *Engine) retireTracing(old, t *Table) {
	if old == nil || old.tracing == nil || t != nil && old.tracing == t.tracing {
		return
	}
	tr := old.tracing
	e.tracers.Add(1)
	go func() {
		defer e.tracers.Done()
		timer := time.NewTimer(tracingGrace)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-e.ctx.Done():
		}
		if err := tr.shutdown(); err != nil {
			e.log.Warn("cannot flush the spans of the replaced tracer", "error", err)
		}
	}()
}

// begin starts the server span of x's hop, continuing the trace its W3C traceparent names, and
// sets x.Trace so its upstream attempts get client spans. end must follow.
//
// Most hops are not sampled: their parent said so, or (at the root) the sample rate decides
// against them. Those skip the SDK: no span, no context, only a traceparent with the sampled flag
// clear sent upstream, so that the next hop decides the same (see fastHop).
func (tr *tracing) begin(x *proxy.Exchange) *hop {
	h, _ := tr.hops.Get().(*hop)
	if h == nil {
		h = &hop{tr: tr}
	}
	h.prevCtx = x.Ctx
	x.Trace = h
	tid, sampled, ok := parseTraceparent(x.Req.Header.Value("traceparent"))
	switch {
	case ok && !sampled:
		h.fast, h.traceID = true, tid
		return h
	case !ok && !tr.sampleRoot():
		h.fast = true
		binary.BigEndian.PutUint64(h.traceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(h.traceID[8:], rand.Uint64()|1) // never all zero
		return h
	}
	parent := x.Ctx
	if parent == nil {
		parent = context.Background()
	}
	if !ok {
		parent = context.WithValue(parent, sampledRoot{}, true) // decided above: see hopSampler
	}
	parent = tr.prop.Extract(parent, headerCarrier{&x.Req.Header})
	name := x.Listener
	h.ctx, h.span = tr.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(x.Start))
	x.Ctx = h.ctx
	return h
}

// sampleRoot makes the sample rate's decision for a trace that starts here.
func (tr *tracing) sampleRoot() bool {
	r := tr.key.sampleRate
	switch {
	case r >= 1:
		return true
	case r <= 0:
		return false
	}
	return rand.Float64() < r
}

// sampledRoot marks the context of a root span the sample rate chose.
type sampledRoot struct{}

// hopSampler samples the root spans begin chose (it made the rate's decision itself) and leaves
// every other decision to base (parent-based, then the rate).
type hopSampler struct{ base sdktrace.Sampler }

// ShouldSample implements sdktrace.Sampler.
func (s hopSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	if v, _ := p.ParentContext.Value(sampledRoot{}).(bool); v && !trace.SpanContextFromContext(p.ParentContext).IsValid() {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
	}
	return s.base.ShouldSample(p)
}

// Description implements sdktrace.Sampler.
func (s hopSampler) Description() string { return "meshgate(" + s.base.Description() + ")" }

// parseTraceparent reads a W3C traceparent (version 00 layout; later versions may append
// fields): the trace id and the sampled flag, and whether it is valid.
func parseTraceparent(v string) (tid [16]byte, sampled, ok bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || len(v) > 55 && v[55] != '-' || v[:2] == "ff" {
		return tid, false, false
	}
	var ver [1]byte
	var sid [8]byte
	var flags [1]byte
	if _, err := hex.Decode(ver[:], []byte(v[0:2])); err != nil {
		return tid, false, false
	}
	if ver[0] == 0 && len(v) != 55 {
		return tid, false, false
	}
	if _, err := hex.Decode(tid[:], []byte(v[3:35])); err != nil || tid == [16]byte{} {
		return tid, false, false
	}
	if _, err := hex.Decode(sid[:], []byte(v[36:52])); err != nil || sid == [8]byte{} {
		return tid, false, false
	}
	if _, err := hex.Decode(flags[:], []byte(v[53:55])); err != nil {
		return tid, false, false
	}
	return tid, flags[0]&1 == 1, true
}

// end finishes the server span of x's hop with what the exchange came to, and restores x.
func (h *hop) end(x *proxy.Exchange) {
	if h.fast {
		x.Trace = nil
		tr := h.tr
		*h = hop{tr: tr}
		tr.hops.Put(h)
		return
	}
	sp := h.span
	if sp.IsRecording() {
		if x.Route != "" {
			sp.SetName(x.Route)
		}
		status := x.Status
		if status == 0 {
			status = 499
		}
		attrs := make([]attribute.KeyValue, 0, 12)
		attrs = append(attrs,
			attribute.String("http.request.method", x.Req.Method),
			attribute.String("url.path", x.Req.Path),
			attribute.Int("http.response.status_code", status),
			attribute.String("server.address", x.Req.Host),
			attribute.String("meshgate.listener", x.Listener),
			attribute.String("meshgate.request_id", x.ID),
		)
		if x.Route != "" {
			attrs = append(attrs, attribute.String("meshgate.route", x.Route))
		}
		if x.Service != "" {
			attrs = append(attrs, attribute.String("meshgate.service", x.Service))
		}
		if x.Reason != "" {
			attrs = append(attrs, attribute.String("meshgate.reason", x.Reason))
		}
		if x.PeerID != "" {
			attrs = append(attrs, attribute.String("meshgate.peer", x.PeerID))
		}
		if id := x.Identity; id != nil && id.Consumer != "" {
			attrs = append(attrs, attribute.String("meshgate.consumer", id.Consumer))
		}
		if x.ClientIP.IsValid() {
			attrs = append(attrs, attribute.String("client.address", x.ClientIP.String()))
		}
		sp.SetAttributes(attrs...)
		if status >= 500 {
			sp.SetStatus(codes.Error, x.Reason)
		}
	}
	sp.End()
	if h.attempt != nil {
		h.attempt.End() // an attempt EndAttempt never saw (a panic recovered below us)
	}
	x.Ctx = h.prevCtx
	x.Trace = nil
	tr := h.tr
	*h = hop{tr: tr}
	tr.hops.Put(h)
}

// hop is the tracing state of one exchange: its server span and the client span of the upstream
// attempt in progress, or for an unsampled hop (fast) only the trace id to pass on. It implements
// proxy.AttemptTracer.
type hop struct {
	tr      *tracing
	span    trace.Span
	ctx     context.Context // carries span
	prevCtx context.Context // x.Ctx before begin
	attempt trace.Span      // the attempt in progress, or nil
	fast    bool            // not sampled: no span, traceID only
	traceID [16]byte
}

var _ proxy.AttemptTracer = (*hop)(nil)

// StartAttempt starts the client span of an upstream attempt, a child of the hop's server span,
// and puts its trace context into the request header the upstream receives.
func (h *hop) StartAttempt(x *proxy.Exchange, endpoint string) {
	if h.fast {
		// The upstream learns the trace and that it is not sampled; the parent id is new, as a
		// client span's would be.
		var b [55]byte
		copy(b[:3], "00-")
		hex.Encode(b[3:35], h.traceID[:])
		b[35] = '-'
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], rand.Uint64()|1)
		hex.Encode(b[36:52], sid[:])
		copy(b[52:], "-00")
		x.Req.Header.Set("traceparent", string(b[:]))
		return
	}
	if h.attempt != nil {
		h.attempt.End()
	}
	n := max(x.Attempts, 1)
	ctx, sp := h.tr.tracer.Start(h.ctx, x.Service, trace.WithSpanKind(trace.SpanKindClient))
	if sp.IsRecording() {
		sp.SetAttributes(
			attribute.Int("meshgate.attempt", n),
			attribute.String("meshgate.service", x.Service),
			attribute.String("server.address", endpoint),
			attribute.String("http.request.method", x.Req.Method),
			attribute.String("url.path", x.Req.Path),
		)
	}
	h.attempt = sp
	h.tr.prop.Inject(ctx, headerCarrier{&x.Req.Header})
}

// EndAttempt ends the attempt's client span with its outcome: the status the upstream answered,
// "retried" when a retry policy held the answer back, or the reason it failed.
func (h *hop) EndAttempt(x *proxy.Exchange, err error) {
	sp := h.attempt
	if sp == nil {
		return
	}
	h.attempt = nil
	if sp.IsRecording() {
		outcome, status := "ok", x.Status
		var held *proxy.HeldResponse
		var pe *proxy.Error
		switch {
		case err == nil:
		case errors.As(err, &held):
			outcome, status = "retried", held.Status
		case errors.As(err, &pe):
			outcome = pe.Reason
		default:
			outcome = "error"
		}
		if status != 0 {
			sp.SetAttributes(attribute.Int("http.response.status_code", status))
		}
		sp.SetAttributes(attribute.String("meshgate.outcome", outcome))
		if err != nil && held == nil || status >= 500 {
			msg := outcome
			if err != nil {
				msg = err.Error()
			}
			sp.SetStatus(codes.Error, msg)
		}
	}
	sp.End()
}

// headerCarrier lets the propagators read and write an httpmsg.Header.
type headerCarrier struct{ h *httpmsg.Header }

// Get returns the first value of key.
func (c headerCarrier) Get(key string) string { return c.h.Value(key) }

// Set replaces the values of key.
func (c headerCarrier) Set(key, value string) { c.h.Set(key, value) }

// Keys lists the header's field names.
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(*c.h))
	for _, f := range *c.h {
		keys = append(keys, f.Name)
	}
	return keys
}
