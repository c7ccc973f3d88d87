package http1

import (
	"reflect"
	"testing"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

func TestIsHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "keep-alive", "Proxy-Connection", "Proxy-Authenticate",
		"PROXY-AUTHORIZATION", "te", "Trailer", "Transfer-Encoding", "upgrade"} {
		if !IsHopByHop(name) {
			t.Errorf("IsHopByHop(%q) = false", name)
		}
	}
	for _, name := range []string{"Content-Length", "Host", "Trailers", "T", "X-Forwarded-For", "Authorization", ""} {
		if IsHopByHop(name) {
			t.Errorf("IsHopByHop(%q) = true", name)
		}
	}
}

func TestStripHopByHop(t *testing.T) {
	f := func(kv ...string) httpmsg.Header {
		h := httpmsg.Header{}
		for i := 0; i < len(kv); i += 2 {
			h = append(h, httpmsg.Field{Name: kv[i], Value: kv[i+1]})
		}
		return h
	}
	tests := []struct {
		desc   string
		in     httpmsg.Header
		keepTE bool
		want   httpmsg.Header
	}{
		{"nothing to strip", f("Accept", "*/*", "X-A", "1"), false, f("Accept", "*/*", "X-A", "1")},
		{"fixed list", f("Connection", "keep-alive", "Keep-Alive", "timeout=5", "Accept", "*/*", "Transfer-Encoding", "chunked",
			"TE", "trailers", "Trailer", "Grpc-Status", "Upgrade", "websocket", "Proxy-Connection", "close",
			"Proxy-Authorization", "Basic x", "Proxy-Authenticate", "Basic"), false, f("Accept", "*/*")},
		{"Connection options", f("X-Secret", "1", "Connection", "X-Secret, x-other", "X-Other", "2", "X-Keep", "3"), false, f("X-Keep", "3")},
		{"options across Connection fields", f("A", "1", "Connection", "a", "B", "2", "connection", " b ", "C", "3"), false, f("C", "3")},
		{"many Connection fields", f("Connection", "a", "Connection", "b", "Connection", "c", "Connection", "d", "Connection", "e",
			"A", "1", "E", "5", "F", "6"), false, f("F", "6")},
		{"keep TE trailers", f("TE", "trailers", "Content-Type", "application/grpc"), true, f("TE", "trailers", "Content-Type", "application/grpc")},
		{"keep TE normalises", f("te", "gzip;q=0.5, trailers", "X", "1"), true, f("te", "trailers", "X", "1")},
		{"keep TE drops others", f("TE", "gzip", "X", "1"), true, f("X", "1")},
		{"keep TE once", f("TE", "trailers", "TE", "trailers"), true, f("TE", "trailers")},
		{"TE named by Connection still kept", f("Connection", "TE", "TE", "trailers"), true, f("TE", "trailers")},
		{"Connection cannot protect itself", f("Connection", "Connection"), false, f()},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			h := tt.in.Clone()
			StripHopByHop(&h, tt.keepTE)
			if !reflect.DeepEqual(h, tt.want) {
				t.Fatalf("got %v, want %v", h, tt.want)
			}
		})
	}
}

func TestStripHopByHopAllocs(t *testing.T) {
	src := httpmsg.Header{{Name: "Connection", Value: "close, X-A"}, {Name: "X-A", Value: "1"}, {Name: "Accept", Value: "*/*"}}
	h := make(httpmsg.Header, 0, len(src))
	if a := testing.AllocsPerRun(100, func() {
		h = append(h[:0], src...)
		StripHopByHop(&h, true)
	}); a != 0 {
		t.Fatalf("StripHopByHop: %v allocs", a)
	}
}
