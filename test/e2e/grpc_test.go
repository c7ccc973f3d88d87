package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// testService implements grpc.testing.TestService for the gRPC test: it echoes payloads, sets
// header and trailer metadata on every call, and answers with the status a request asks for.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

// UnaryCall echoes the request payload, or fails with the requested status.
func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if err := grpc.SetHeader(ctx, metadata.Pairs("x-upstream-header", "unary-header")); err != nil {
		return nil, err
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs("x-upstream-trailer", "unary-trailer")); err != nil {
		return nil, err
	}
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

// StreamingOutputCall sends one message per response parameter, numbered in order.
func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	if err := stream.SendHeader(metadata.Pairs("x-upstream-header", "stream-header")); err != nil {
		return err
	}
	for i, p := range req.GetResponseParameters() {
		if p.GetIntervalUs() > 0 {
			time.Sleep(time.Duration(p.GetIntervalUs()) * time.Microsecond)
		}
		body := []byte(fmt.Sprintf("message-%04d", i))
		for len(body) < int(p.GetSize()) {
			body = append(body, '.')
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	stream.SetTrailer(metadata.Pairs("x-upstream-trailer", "stream-trailer"))
	return nil
}

// FullDuplexCall echoes every request payload as it arrives.
func (testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	stream.SetTrailer(metadata.Pairs("x-upstream-trailer", "duplex-trailer"))
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// startGRPCUpstream serves testService on a loopback port and returns its address.
func startGRPCUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, testService{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// TestGRPC runs unary, server-streaming and full-duplex gRPC calls through an h2c listener to a gRPC
// service: payloads, header and trailer metadata, and error statuses must all arrive intact.
func TestGRPC(t *testing.T) {
	t.Parallel()
	up := startGRPCUpstream(t)
	admin, public := freeAddr(t), freeAddr(t)
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: grpc, address: "{{PUBLIC}}", protocol: h2c}
routes:
  - name: test-service
    match: [{path: {prefix: /grpc.testing.TestService}}]
    backends: [{service: test}]
    timeout: 0s
services:
  - name: test
    protocol: grpc
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up))

	cc, err := grpc.NewClient(public, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	client := testpb.NewTestServiceClient(cc)

	t.Run("unary", func(t *testing.T) {
		ctx := ctxTimeout(t, requestTimeout)
		var hdr, trl metadata.MD
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("ping")}},
			grpc.Header(&hdr), grpc.Trailer(&trl))
		if err != nil {
			t.Fatalf("UnaryCall: %v", err)
		}
		if got := string(resp.GetPayload().GetBody()); got != "ping" {
			t.Errorf("payload %q, want ping", got)
		}
		if got := hdr.Get("x-upstream-header"); len(got) != 1 || got[0] != "unary-header" {
			t.Errorf("header metadata x-upstream-header = %q, want [unary-header] (all: %v)", got, hdr)
		}
		if got := trl.Get("x-upstream-trailer"); len(got) != 1 || got[0] != "unary-trailer" {
			t.Errorf("trailer metadata x-upstream-trailer = %q, want [unary-trailer] (all: %v)", got, trl)
		}
	})

	t.Run("error status", func(t *testing.T) {
		ctx := ctxTimeout(t, requestTimeout)
		var trl metadata.MD
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{
			ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such widget: 42"},
		}, grpc.Trailer(&trl))
		st, ok := status.FromError(err)
		if !ok || st.Code() != codes.NotFound || st.Message() != "no such widget: 42" {
			t.Fatalf("got %v, want NotFound \"no such widget: 42\"", err)
		}
		if got := trl.Get("x-upstream-trailer"); len(got) != 1 || got[0] != "unary-trailer" {
			t.Errorf("trailer metadata on an error = %q, want [unary-trailer]", got)
		}
	})

	t.Run("server streaming", func(t *testing.T) {
		ctx := ctxTimeout(t, requestTimeout)
		const n = 100
		params := make([]*testpb.ResponseParameters, n)
		for i := range params {
			params[i] = &testpb.ResponseParameters{Size: int32(16 + i*97)}
		}
		stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
		if err != nil {
			t.Fatalf("StreamingOutputCall: %v", err)
		}
		for i := range n {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			body := m.GetPayload().GetBody()
			if want := fmt.Sprintf("message-%04d", i); len(body) != 16+i*97 || string(body[:len(want)]) != want {
				t.Fatalf("message %d: got %d bytes starting %q, want %d bytes starting %q", i, len(body), body[:min(len(body), 12)], 16+i*97, want)
			}
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after %d messages: %v, want io.EOF", n, err)
		}
		hdr, err := stream.Header()
		if err != nil || len(hdr.Get("x-upstream-header")) != 1 || hdr.Get("x-upstream-header")[0] != "stream-header" {
			t.Errorf("header metadata %v (%v), want x-upstream-header: stream-header", hdr, err)
		}
		if got := stream.Trailer().Get("x-upstream-trailer"); len(got) != 1 || got[0] != "stream-trailer" {
			t.Errorf("trailer metadata %v, want x-upstream-trailer: stream-trailer", stream.Trailer())
		}
	})

	t.Run("full duplex", func(t *testing.T) {
		ctx := ctxTimeout(t, requestTimeout)
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatalf("FullDuplexCall: %v", err)
		}
		for i := range 50 {
			msg := fmt.Sprintf("echo-%d", i)
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			// Each echo must come back before the next message is sent: the stream is not buffered
			// until the end in either direction.
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			if got := string(m.GetPayload().GetBody()); got != msg {
				t.Fatalf("echo %d: got %q, want %q", i, got, msg)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want io.EOF", err)
		}
		if got := stream.Trailer().Get("x-upstream-trailer"); len(got) != 1 || got[0] != "duplex-trailer" {
			t.Errorf("trailer metadata %v, want x-upstream-trailer: duplex-trailer", stream.Trailer())
		}
	})
}
