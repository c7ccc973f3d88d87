package sidecar

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcWorkload implements the gRPC test service: echoes, a trailer, a stream and a status.
type grpcWorkload struct {
	testpb.UnimplementedTestServiceServer
}

func (grpcWorkload) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if req.GetResponseStatus().GetCode() != 0 {
		return nil, status.Error(codes.Code(req.GetResponseStatus().GetCode()), req.GetResponseStatus().GetMessage())
	}
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-workload-trailer", "kept"))
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (grpcWorkload) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
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

// grpcApp starts the gRPC workload on loopback.
func grpcApp(t *testing.T) Port {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, grpcWorkload{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return Port{Name: "grpc", Port: ln.Addr().(*net.TCPAddr).Port, Protocol: "grpc"}
}

// TestSidecarGRPC calls a gRPC workload through two sidecars: unary with trailers and a
// status, and a bidirectional stream.
func TestSidecarGRPC(t *testing.T) {
	m := startMesh(t, "")
	m.sidecar("greeter", []Port{grpcApp(t)}, nil)
	client := m.sidecar("client", []Port{app(t, "client")}, func(o *Options) {
		o.Upstreams = map[string]string{"greeter.shop": "127.0.0.1:0"}
	})
	conn, err := grpc.NewClient(client.UpstreamAddr("greeter.shop").String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tc := testpb.NewTestServiceClient(conn)
	eventually(t, "the greeter's endpoint reaches the client", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var trailer metadata.MD
	resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}, grpc.Trailer(&trailer))
	if err != nil || string(resp.GetPayload().GetBody()) != "hello" {
		t.Fatalf("unary: %v %q", err, resp.GetPayload().GetBody())
	}
	if got := trailer.Get("x-workload-trailer"); len(got) != 1 || got[0] != "kept" {
		t.Errorf("trailer %v, want the workload's trailer relayed", trailer)
	}
	_, err = tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such order"}})
	if st := status.Convert(err); st.Code() != codes.NotFound || st.Message() != "no such order" {
		t.Errorf("status %v, want NotFound from the workload", err)
	}

	stream, err := tc.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		want := []byte{byte(i), 'x'}
		if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: want}}); err != nil {
			t.Fatal(err)
		}
		got, err := stream.Recv()
		if err != nil || string(got.GetPayload().GetBody()) != string(want) {
			t.Fatalf("message %d: %v %q", i, err, got.GetPayload().GetBody())
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
}

// TestSidecarPermissive serves plaintext from outside the mesh on a permissive service, while
// identity rules still see no identity for it.
func TestSidecarPermissive(t *testing.T) {
	m := startMesh(t, `
version: 1
services:
  - name: legacy
    discovery: {service: legacy, namespace: shop}
    inbound: {mtls: permissive}
`)
	legacy := m.sidecar("legacy", []Port{app(t, "legacy")}, nil)
	eventually(t, "plaintext is served once the permissive config arrived", func() bool {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + legacy.InboundAddr().String() + "/old")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && string(b) == "legacy /old"
	})
}

// TestSidecarDrain: a draining workload stops getting new calls once callers learn it, while
// its sidecar still serves during the drain delay.
func TestSidecarDrain(t *testing.T) {
	m := startMesh(t, "")
	one := m.sidecar("orders", []Port{app(t, "orders-1")}, func(o *Options) { o.DrainDelay = 3 * time.Second })
	m.sidecar("orders", []Port{app(t, "orders-2")}, nil)
	web := m.sidecar("web", []Port{app(t, "web")}, nil)
	seen := map[string]bool{}
	eventually(t, "both replicas serve", func() bool {
		_, _, body := call(t, web, "orders.shop.mesh", "/")
		seen[body] = true
		return seen["orders-1 /"] && seen["orders-2 /"]
	})
	drained := make(chan struct{})
	go func() {
		one.Drain(context.Background())
		close(drained)
	}()
	// Within the drain delay, callers stop choosing the draining replica, and no call fails.
	eventually(t, "calls avoid the draining replica", func() bool {
		for range 10 {
			status, _, body := call(t, web, "orders.shop.mesh", "/")
			if status != 200 {
				t.Fatalf("a call failed while a replica drained: %d %s", status, body)
			}
			if body == "orders-1 /" {
				return false
			}
		}
		return true
	})
	<-drained
	if err := one.ReadyErr(); err == nil {
		t.Fatal("a draining sidecar reports ready")
	}
}
