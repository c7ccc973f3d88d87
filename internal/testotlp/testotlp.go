// Package testotlp runs OTLP trace receivers on loopback for tests: a gRPC TraceService and an
// OTLP/HTTP endpoint decoding protobuf bodies, both keeping every span they receive. It is
// imported only by tests.
package testotlp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Span is one received span with the service.name of the resource that sent it.
type Span struct {
	// Service is the resource's service.name.
	Service string
	// TraceID, SpanID and ParentID are hex; ParentID is "" for a root span.
	TraceID, SpanID, ParentID string
	// Name is the span's name.
	Name string
	// Kind is the span's kind.
	Kind tracepb.Span_SpanKind
	// Attrs are the span's attributes as text (ints formatted in decimal).
	Attrs map[string]string
}

// Receiver keeps the spans exported to it.
type Receiver struct {
	// Endpoint is what a tracing config names: "127.0.0.1:PORT" (gRPC) or
	// "http://127.0.0.1:PORT/v1/traces" (HTTP).
	Endpoint string

	mu    sync.Mutex
	spans []Span
}

// Spans returns a copy of the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Wait returns the spans received once cond holds for them, failing t after timeout.
func (r *Receiver) Wait(t testing.TB, timeout time.Duration, cond func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := r.Spans()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("testotlp: the spans received within %v do not hold the condition:\n%s", timeout, Format(s))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Format lists spans one a line, for failure messages.
func Format(spans []Span) string {
	var out string
	for _, s := range spans {
		out += fmt.Sprintf("  %s %s trace=%s span=%s parent=%s kind=%v %v\n", s.Service, s.Name, s.TraceID, s.SpanID, s.ParentID, s.Kind, s.Attrs)
	}
	return out
}

func (r *Receiver) add(req *collectorpb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s := Span{Service: service, TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					ParentID: hex.EncodeToString(sp.GetParentSpanId()), Name: sp.GetName(), Kind: sp.GetKind(), Attrs: map[string]string{}}
				for _, kv := range sp.GetAttributes() {
					v := kv.GetValue()
					if _, ok := v.GetValue().(*commonpb.AnyValue_IntValue); ok {
						s.Attrs[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
					} else {
						s.Attrs[kv.GetKey()] = v.GetStringValue()
					}
				}
				r.spans = append(r.spans, s)
			}
		}
	}
}

// grpcService is the TraceService of a gRPC receiver.
type grpcService struct {
	collectorpb.UnimplementedTraceServiceServer
	r *Receiver
}

// Export keeps the request's spans.
func (g *grpcService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	g.r.add(req)
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

// StartGRPC starts an OTLP/gRPC receiver on loopback, stopped when t ends.
func StartGRPC(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Endpoint: ln.Addr().String()}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, &grpcService{r: r})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return r
}

// StartHTTP starts an OTLP/HTTP receiver (POST /v1/traces, protobuf) on loopback, stopped when t
// ends.
func StartHTTP(t testing.TB) *Receiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Receiver{Endpoint: "http://" + ln.Addr().String() + "/v1/traces"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var msg collectorpb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("testotlp: %v", err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return r
}
