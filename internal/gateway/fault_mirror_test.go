package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestFaultInjection injects aborts and delays on routes whose fault policy is opted into per
// request with a header.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, "app", upstreamOptions{})
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: abort
    match: [{path: {prefix: /abort}}]
    fault:
      header: X-Chaos
      abort: {percent: 100, status: 503}
    backends: [{service: app}]
  - name: delay
    match: [{path: {prefix: /delay}}]
    fault:
      header: X-Chaos
      delay: {percent: 100, duration: 300ms}
    backends: [{service: app}]
  - name: slow
    match: [{path: {prefix: /slow}}]
    timeout: 250ms
    fault:
      delay: {percent: 100, duration: 1h}
    backends: [{service: app}]
  - name: half
    match: [{path: {prefix: /half}}]
    fault:
      abort: {percent: 50, status: 500}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, up.Addr))
	c := newClient(t)
	base := baseURL(t, gw, "public")
	chaos := func(path string) *http.Request {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Chaos", "1")
		return req
	}

	t.Run("abort only with the header", func(t *testing.T) {
		before := up.Hits.Load()
		if r := get(t, c, base+"/abort"); r.Status != 200 || r.Echo == nil {
			t.Fatalf("without the header: status %d reason %q; want 200 from the upstream", r.Status, r.reason())
		}
		r := do(t, c, chaos("/abort"))
		if r.Status != 503 || r.reason() != "fault_injected" || string(r.Body) != "503 fault_injected\n" {
			t.Fatalf("with the header: status %d reason %q body %q; want 503 fault_injected", r.Status, r.reason(), r.Body)
		}
		if r.Header.Get("X-Request-Id") == "" {
			t.Error("the injected answer has no X-Request-Id")
		}
		if got := up.Hits.Load() - before; got != 1 {
			t.Errorf("the upstream saw %d requests, want 1 (the aborted one never reaches it)", got)
		}
		if v, _ := metricValue(t, gw, "meshgate_fault_injected_total", map[string]string{"route": "abort", "kind": "abort"}); v != 1 {
			t.Errorf("meshgate_fault_injected_total{route=abort,kind=abort} = %v, want 1", v)
		}
	})

	t.Run("delay only with the header", func(t *testing.T) {
		start := time.Now()
		if r := get(t, c, base+"/delay"); r.Status != 200 {
			t.Fatalf("without the header: status %d", r.Status)
		}
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("without the header the request took %v; it must not be delayed", d)
		}
		start = time.Now()
		if r := do(t, c, chaos("/delay")); r.Status != 200 || r.Echo == nil {
			t.Fatalf("with the header: status %d reason %q; want 200 from the upstream", r.Status, r.reason())
		}
		if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
			t.Errorf("with the header the request took %v, want about 300ms", d)
		}
		if v, _ := metricValue(t, gw, "meshgate_fault_injected_total", map[string]string{"route": "delay", "kind": "delay"}); v != 1 {
			t.Errorf("meshgate_fault_injected_total{route=delay,kind=delay} = %v, want 1", v)
		}
	})

	t.Run("delay ends at the route timeout", func(t *testing.T) {
		before := up.Hits.Load()
		start := time.Now()
		r := get(t, c, base+"/slow")
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Errorf("the request took %v, want about the route timeout of 250ms", d)
		}
		if r.Status != 504 || r.reason() != "upstream_timeout" {
			t.Errorf("status %d reason %q; want 504 upstream_timeout", r.Status, r.reason())
		}
		if up.Hits.Load() != before {
			t.Error("a request whose deadline passed during the delay reached the upstream")
		}
	})

	t.Run("percentage", func(t *testing.T) {
		const n = 400
		aborted := 0
		for i := 0; i < n; i++ {
			switch r := get(t, c, base+"/half"); {
			case r.Status == 500 && r.reason() == "fault_injected":
				aborted++
			case r.Status != 200:
				t.Fatalf("status %d reason %q", r.Status, r.reason())
			}
		}
		// 50% of 400: the standard deviation is 10, so 150..250 is five of them either way.
		if aborted < 150 || aborted > 250 {
			t.Errorf("%d of %d requests aborted, want about half", aborted, n)
		}
	})
}

// fmGRPCService implements grpc.testing.TestService for the fault and mirror tests: it echoes
// payloads and counts the calls it serves.
type fmGRPCService struct {
	testpb.UnimplementedTestServiceServer
	unary  atomic.Int64
	duplex atomic.Int64
}

func (s *fmGRPCService) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	s.unary.Add(1)
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (s *fmGRPCService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	s.duplex.Add(1)
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

// startFMGRPCUpstream serves svc on a loopback port until the test ends and returns its address.
func startFMGRPCUpstream(t *testing.T, svc *fmGRPCService) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// fmGRPCClient returns a client of the gRPC test service at addr, closed when the test ends.
func fmGRPCClient(t *testing.T, addr string) testpb.TestServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// TestFaultGRPCAbort: an injected gRPC abort reaches a gRPC client as a proper status, and the
// upstream never sees the call.
func TestFaultGRPCAbort(t *testing.T) {
	t.Parallel()
	svc := &fmGRPCService{}
	up := startFMGRPCUpstream(t, svc)
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: grpc, address: "127.0.0.1:0", protocol: h2c}]
routes:
  - name: test-service
    fault:
      header: x-chaos
      abort: {percent: 100, grpcStatus: unavailable}
    backends: [{service: test}]
services:
  - name: test
    protocol: grpc
    endpoints: [{address: %q}]
`, up))
	client := fmGRPCClient(t, listenerAddr(t, gw, "grpc"))
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("ping")}}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := client.UnaryCall(ctx, req)
	if err != nil || string(resp.GetPayload().GetBody()) != "ping" {
		t.Fatalf("without the header: %v, %v; want the echo", resp, err)
	}
	var trl metadata.MD
	_, err = client.UnaryCall(metadata.AppendToOutgoingContext(ctx, "x-chaos", "1"), req, grpc.Trailer(&trl))
	st, _ := status.FromError(err)
	if st.Code() != codes.Unavailable || st.Message() != "fault injected" {
		t.Fatalf("with the header: %v; want code Unavailable, message \"fault injected\"", err)
	}
	// A trailers-only response: its one header block is the trailer.
	if got := trl.Get("x-meshgate-reason"); len(got) != 1 || got[0] != "fault_injected" {
		t.Errorf("x-meshgate-reason trailer metadata %q, want [fault_injected]", got)
	}
	if n := svc.unary.Load(); n != 1 {
		t.Errorf("the upstream served %d calls, want 1", n)
	}
}

// shadowRecord is what a shadow upstream saw of one request.
type shadowRecord struct {
	Method, URI, Host string
	ContentLength     int64
	Chunked           bool
	BodySHA256        string
	XTest             string
}

// shadowUpstream is an HTTP upstream that records every request it receives. Each request first
// waits for gate, when it is set.
type shadowUpstream struct {
	*upstream
	mu      sync.Mutex
	records []shadowRecord
}

func startShadowUpstream(t *testing.T, gate <-chan struct{}) *shadowUpstream {
	t.Helper()
	s := &shadowUpstream{}
	s.upstream = startUpstream(t, "shadow", upstreamOptions{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		h := sha256.New()
		_, _ = io.Copy(h, r.Body)
		rec := shadowRecord{Method: r.Method, URI: r.RequestURI, Host: r.Host, ContentLength: r.ContentLength,
			BodySHA256: hex.EncodeToString(h.Sum(nil)), XTest: r.Header.Get("X-Test")}
		for _, te := range r.TransferEncoding {
			rec.Chunked = rec.Chunked || te == "chunked"
		}
		s.mu.Lock()
		s.records = append(s.records, rec)
		s.mu.Unlock()
		// An answer the client must never see.
		w.Header().Set("X-Server", "shadow")
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "shadow answer\n")
	})})
	return s
}

func (s *shadowUpstream) seen() []shadowRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shadowRecord(nil), s.records...)
}

// mirrorConfig is a gateway with one listener and a route "mirrored" to app, copied to shadow
// with the given policy fields.
func mirrorConfig(app, shadow, policy string) string {
	return configHead + fmt.Sprintf(`listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: mirrored
    timeout: 5s
    filters:
      - requestHeaders: {set: {X-Test: filtered}}
    mirror: {service: shadow, %s}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
  - name: shadow
    endpoints: [{address: %q}]
`, policy, app, shadow)
}

// TestMirror: copies carry the same body and the shadow host; the client sees only the primary.
func TestMirror(t *testing.T) {
	t.Parallel()
	app := startUpstream(t, "app", upstreamOptions{})
	shadow := startShadowUpstream(t, nil)
	gw := startGateway(t, mirrorConfig(app.Addr, shadow.Addr, "percent: 100, maxBodyBytes: 1024, maxInFlight: 10"))
	c := newClient(t)
	addr := listenerAddr(t, gw, "public")
	base := "http://" + addr
	shadowHost := strings.Replace(addr, ":", "-shadow:", 1)

	send := func(t *testing.T, body []byte, chunked bool) *result {
		t.Helper()
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: the client sends it chunked
		}
		req, err := http.NewRequest(http.MethodPost, base+"/orders?id=7", rd)
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, c, req)
		if r.Status != 200 || r.Echo == nil || r.Echo.Server != "app" {
			t.Fatalf("status %d reason %q; want 200 from app", r.Status, r.reason())
		}
		if r.Echo.BodySHA256 != sha256Hex(body) || r.Echo.BodyLen != int64(len(body)) {
			t.Fatalf("app got %d bytes with sha %s; want the %d bytes sent", r.Echo.BodyLen, r.Echo.BodySHA256, len(body))
		}
		return r
	}
	waitShadow := func(t *testing.T, n int) shadowRecord {
		t.Helper()
		waitFor(t, 5*time.Second, fmt.Sprintf("the shadow to receive %d requests", n), func() bool { return len(shadow.seen()) >= n })
		recs := shadow.seen()
		if len(recs) != n {
			t.Fatalf("the shadow received %d requests, want %d", len(recs), n)
		}
		return recs[n-1]
	}
	body := bytes.Repeat([]byte("mirror-me!"), 100) // 1000 bytes

	t.Run("declared body", func(t *testing.T) {
		send(t, body, false)
		rec := waitShadow(t, 1)
		want := shadowRecord{Method: "POST", URI: "/orders?id=7", Host: shadowHost, ContentLength: int64(len(body)),
			BodySHA256: sha256Hex(body), XTest: "filtered"}
		if rec != want {
			t.Errorf("the shadow saw\n\t%+v\nwant\n\t%+v", rec, want)
		}
	})
	t.Run("chunked body", func(t *testing.T) {
		r := send(t, body, true)
		if !r.Echo.Chunked {
			t.Error("the primary did not receive the body chunked, as the client sent it")
		}
		rec := waitShadow(t, 2)
		if rec.BodySHA256 != sha256Hex(body) || rec.ContentLength != int64(len(body)) || rec.Chunked {
			t.Errorf("the shadow saw %+v; want the same body with a declared length", rec)
		}
	})
	t.Run("no body", func(t *testing.T) {
		if r := get(t, c, base+"/status"); r.Status != 200 || r.Echo.Server != "app" {
			t.Fatalf("status %d", r.Status)
		}
		if rec := waitShadow(t, 3); rec.Method != "GET" || rec.URI != "/status" || rec.ContentLength != 0 {
			t.Errorf("the shadow saw %+v", rec)
		}
	})
	t.Run("bodies over the limit are not copied", func(t *testing.T) {
		big := bytes.Repeat([]byte("0123456789"), 410) // 4100 bytes
		send(t, big, false)
		send(t, big, true)
		time.Sleep(200 * time.Millisecond)
		if n := len(shadow.seen()); n != 3 {
			t.Errorf("the shadow received %d requests, want still 3", n)
		}
	})
	waitFor(t, 5*time.Second, "three copies counted as sent", func() bool {
		v, _ := metricValue(t, gw, "meshgate_mirror_requests_total", map[string]string{"route": "mirrored", "result": "sent"})
		return v == 3
	})
	if v, _ := metricValue(t, gw, "meshgate_mirror_requests_total", map[string]string{"route": "mirrored", "result": "skipped"}); v != 2 {
		t.Errorf("mirror requests skipped = %v, want 2", v)
	}
}

// TestMirrorNeverHoldsTheClient: a stuck shadow delays no client, copies beyond maxInFlight are
// dropped, and a shadow that cannot be reached changes nothing for the client.
func TestMirrorNeverHoldsTheClient(t *testing.T) {
	t.Parallel()
	app := startUpstream(t, "app", upstreamOptions{})
	gate := make(chan struct{})
	shadow := startShadowUpstream(t, gate)
	released := false
	release := func() {
		if !released {
			released = true
			close(gate)
		}
	}
	defer release() // before the upstreams close: httptest waits for its handlers
	gw := startGateway(t, mirrorConfig(app.Addr, shadow.Addr, "percent: 100, maxBodyBytes: 1024, maxInFlight: 2"))
	c := newClient(t)
	base := baseURL(t, gw, "public")

	start := time.Now()
	for i := 0; i < 6; i++ {
		if r := get(t, c, base+"/x"); r.Status != 200 || r.Echo.Server != "app" {
			t.Fatalf("request %d: status %d reason %q", i, r.Status, r.reason())
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("6 requests took %v while the shadow was stuck", d)
	}
	if v, _ := metricValue(t, gw, "meshgate_mirror_requests_total", map[string]string{"route": "mirrored", "result": "dropped"}); v != 4 {
		t.Errorf("copies dropped = %v, want 4 (maxInFlight 2)", v)
	}
	release()
	waitFor(t, 5*time.Second, "the two copies in flight to arrive", func() bool { return len(shadow.seen()) == 2 })

	// A shadow nobody listens on.
	reload(t, gw, mirrorConfig(app.Addr, freeAddr(t), "percent: 100, maxBodyBytes: 1024, maxInFlight: 2"))
	if r := get(t, c, base+"/y"); r.Status != 200 || r.Echo.Server != "app" {
		t.Fatalf("with the shadow down: status %d reason %q", r.Status, r.reason())
	}
	waitFor(t, 5*time.Second, "the failed copy to be counted", func() bool {
		v, _ := metricValue(t, gw, "meshgate_mirror_requests_total", map[string]string{"route": "mirrored", "result": "failed"})
		return v == 1
	})
}

// TestMirrorGRPC: gRPC calls on a mirrored route work, a full-duplex stream included (its body
// has no length and must never be held back), and unary calls reach the shadow.
func TestMirrorGRPC(t *testing.T) {
	t.Parallel()
	primary, shadow := &fmGRPCService{}, &fmGRPCService{}
	pAddr, sAddr := startFMGRPCUpstream(t, primary), startFMGRPCUpstream(t, shadow)
	gw := startGateway(t, configHead+fmt.Sprintf(`listeners: [{name: grpc, address: "127.0.0.1:0", protocol: h2c}]
routes:
  - name: test-service
    timeout: 10s
    mirror: {service: shadow, percent: 100, maxBodyBytes: 65536, maxInFlight: 10}
    backends: [{service: test}]
services:
  - name: test
    protocol: grpc
    endpoints: [{address: %q}]
  - name: shadow
    protocol: grpc
    endpoints: [{address: %q}]
`, pAddr, sAddr))
	client := fmGRPCClient(t, listenerAddr(t, gw, "grpc"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("ping")}})
	if err != nil || string(resp.GetPayload().GetBody()) != "ping" {
		t.Fatalf("UnaryCall: %v, %v", resp, err)
	}
	waitFor(t, 5*time.Second, "the shadow to serve the unary call", func() bool { return shadow.unary.Load() == 1 })

	stream, err := client.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("ping-%d", i)
		if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		got, err := stream.Recv()
		if err != nil || string(got.GetPayload().GetBody()) != msg {
			t.Fatalf("message %d: %v, %v; want the echo while the stream stays open", i, got, err)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v", err)
	}
	if primary.duplex.Load() != 1 {
		t.Errorf("the primary served %d streams, want 1", primary.duplex.Load())
	}
	// The stream's body ended within the limit, so a copy follows.
	waitFor(t, 5*time.Second, "the shadow to receive the stream's copy", func() bool { return shadow.duplex.Load() == 1 })
}
