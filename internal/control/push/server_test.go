package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
)

// gatewayKeys is the gateway scope of meshYAML.
var gatewayKeys = []string{
	"authenticator/policy", "bundle/trust", "consumer/web", "listener/public", "plan/standard",
	"route/users-api", "service/shadow", "service/users",
}

func TestFullThenIncremental(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw-1")})

	full := r.recv()
	if !full.GetFull() || full.GetVersionInfo() != "1" {
		t.Fatalf("first response: full=%v version=%q", full.GetFull(), full.GetVersionInfo())
	}
	if got := keys(full); !slices.Equal(got, gatewayKeys) {
		t.Errorf("full response carries %v, want %v", got, gatewayKeys)
	}
	for _, res := range full.GetResources() {
		if res.GetVersion() != Version(res.GetBody()) {
			t.Errorf("%s: version %s is not the digest of its body", Key(res.Type, res.Name), res.Version)
		}
	}
	r.ack(full)

	// An endpoint change sends only the service that changed.
	p.srv.Update(mkState(t, 2, cfg, users(2)))
	d := r.recv()
	if d.GetFull() || !slices.Equal(keys(d), []string{"service/users"}) || len(d.GetRemoved()) != 0 {
		t.Fatalf("endpoint change: full=%v resources %v removed %v", d.GetFull(), keys(d), d.GetRemoved())
	}
	var svc config.Service
	if err := json.Unmarshal(d.GetResources()[0].GetBody(), &svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.Endpoints) != 2 || svc.Endpoints[1].Address != "10.1.0.2:8080" {
		t.Errorf("pushed endpoints %v", svc.Endpoints)
	}
	r.ack(d)

	// Dropping the mirror changes the route and removes the service only it used.
	cfg3 := mustConfig(t, strings.Replace(meshYAML, "    mirror: {service: shadow}\n", "", 1))
	p.srv.Update(mkState(t, 3, cfg3, users(2)))
	d = r.recv()
	if d.GetFull() || !slices.Equal(keys(d), []string{"route/users-api"}) || !slices.Equal(d.GetRemoved(), []string{"service/shadow"}) {
		t.Fatalf("mirror removed: resources %v removed %v", keys(d), d.GetRemoved())
	}
	r.ack(d)

	// A state that changes nothing in the gateway's scope sends nothing.
	p.srv.Update(mkState(t, 4, cfg3, append(users(2), users(3)[2])[:2]))
	r.none(150 * time.Millisecond)

	eventually(t, 5*time.Second, "the ACK in the status", func() bool {
		st := p.srv.Status()
		return len(st) == 1 && st[0].VersionAcked == "3" && st[0].VersionSent == "3" && st[0].PendingSince == nil
	})
	st := p.srv.Status()[0]
	if st.ID != "gw-1" || st.Role != RoleGateway || st.Peer == "" || st.ConnectedSince.IsZero() || st.Stale {
		t.Errorf("status %+v", st)
	}
	if n := p.counter(t, "meshgate_control_push_responses_total"); n != 3 {
		t.Errorf("responses_total = %v, want 3", n)
	}
	if n := p.counter(t, "meshgate_control_push_streams"); n != 1 {
		t.Errorf("streams = %v, want 1", n)
	}
}

func TestResume(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw-1")})
	full := r.recv()
	r.ack(full)
	held := versions(full)
	r.cancel()

	tests := []struct {
		desc    string
		held    map[string]string
		changed []string
		removed []string
	}{
		{"nothing changed: nothing is sent", held, nil, nil},
		{"an outdated and an unknown resource", func() map[string]string {
			m := maps.Clone(held)
			m["service/users"] = "0000"
			m["route/gone"] = "1234"
			delete(m, "plan/standard")
			return m
		}(), []string{"plan/standard", "service/users"}, []string{"route/gone"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw-1"), VersionInfo: "1", ResourceVersions: tc.held})
			if tc.changed == nil {
				r.none(150 * time.Millisecond)
				// The resumed stream gets what changes afterwards, as a difference.
				p.srv.Update(mkState(t, 2, cfg, users(2)))
				d := r.recv()
				if d.GetFull() || !slices.Equal(keys(d), []string{"service/users"}) {
					t.Fatalf("after resume: full=%v resources %v", d.GetFull(), keys(d))
				}
				r.ack(d)
				return
			}
			d := r.recv()
			if d.GetFull() || !slices.Equal(keys(d), tc.changed) || !slices.Equal(d.GetRemoved(), tc.removed) {
				t.Fatalf("full=%v resources %v removed %v; want %v removed %v", d.GetFull(), keys(d), d.GetRemoved(), tc.changed, tc.removed)
			}
		})
	}
}

func TestNACKKeepsLastGoodAndIsNotResent(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw-1")})
	r.ack(r.recv())

	bad := mustConfig(t, strings.Replace(meshYAML, "name: users-api", "name: bad", 1))
	p.srv.Update(mkState(t, 2, bad, users(1)))
	d := r.recv()
	r.nack(d, "route bad refused")
	eventually(t, 5*time.Second, "the NACK in the status", func() bool {
		st := p.srv.Status()
		return len(st) == 1 && st[0].LastNACK != nil
	})
	st := p.srv.Status()[0]
	if st.LastNACK.Version != "2" || st.LastNACK.Error != "route bad refused" || st.VersionAcked != "1" || st.PendingSince != nil {
		t.Errorf("status after NACK: %+v, NACK %+v", st, *st.LastNACK)
	}
	if n := p.counter(t, "meshgate_control_push_nacks_total"); n != 1 {
		t.Errorf("nacks_total = %v", n)
	}
	// The refused state is not sent again, even as a new version with the same content.
	p.srv.Update(mkState(t, 3, bad, users(1)))
	r.none(150 * time.Millisecond)

	// The next change is diffed against what the proxy last ACKed: it carries the route change
	// again beside the new endpoints.
	p.srv.Update(mkState(t, 4, bad, users(2)))
	d = r.recv()
	if d.GetFull() || !slices.Equal(keys(d), []string{"route/bad", "service/users"}) || !slices.Equal(d.GetRemoved(), []string{"route/users-api"}) {
		t.Fatalf("after NACK: resources %v removed %v", keys(d), d.GetRemoved())
	}
	r.ack(d)
	eventually(t, 5*time.Second, "the ACK", func() bool { return p.srv.Status()[0].VersionAcked == "4" })
}

func TestStaleProxyDoesNotBlockOthers(t *testing.T) {
	p := startPlane(t, ServerOptions{AckTimeout: 100 * time.Millisecond})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	slow := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("slow")})
	fast := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("fast")})
	pending := slow.recv() // never answered (for now)
	fast.ack(fast.recv())

	for v := uint64(2); v <= 4; v++ {
		p.srv.Update(mkState(t, v, cfg, users(int(v))))
		d := fast.recv()
		if d.GetVersionInfo() != fmt.Sprint(v) {
			t.Fatalf("fast proxy got version %s, want %d", d.GetVersionInfo(), v)
		}
		fast.ack(d)
	}
	slow.none(50 * time.Millisecond) // one response in flight at a time
	eventually(t, 5*time.Second, "the slow proxy stale", func() bool {
		for _, st := range p.srv.Status() {
			if st.ID == "slow" {
				return st.Stale && st.VersionSent == "1" && st.VersionAcked == ""
			}
		}
		return false
	})
	if n := p.counter(t, "meshgate_control_push_stale_proxies"); n != 1 {
		t.Errorf("stale_proxies = %v", n)
	}
	// A stale nonce is ignored; the right one gets the newest state, coalesced.
	slow.ack(&controlv1.DiscoveryResponse{VersionInfo: "9", Nonce: "999"})
	slow.none(50 * time.Millisecond)
	slow.ack(pending)
	d := slow.recv()
	if d.GetVersionInfo() != "4" || !slices.Equal(keys(d), []string{"service/users"}) {
		t.Fatalf("slow proxy after its ACK: version %s resources %v", d.GetVersionInfo(), keys(d))
	}
	slow.ack(d)
	eventually(t, 5*time.Second, "no stale proxy", func() bool { return p.counter(t, "meshgate_control_push_stale_proxies") == 0 })
}

func TestRefusedStreams(t *testing.T) {
	p := startPlane(t, ServerOptions{Authorize: func(_ context.Context, n *controlv1.Node) error {
		if n.GetService() != "gateway" {
			return errors.New("identity spiffe://mesh.local/ns/default/sa/gateway may not subscribe as " + n.GetService())
		}
		return nil
	}})
	p.srv.Update(mkState(t, 1, mustConfig(t, meshYAML), nil))
	tests := []struct {
		desc string
		req  *controlv1.DiscoveryRequest
		code codes.Code
	}{
		{"no node", &controlv1.DiscoveryRequest{}, codes.InvalidArgument},
		{"no id", &controlv1.DiscoveryRequest{Node: &controlv1.Node{Role: RoleGateway}}, codes.InvalidArgument},
		{"unknown role", &controlv1.DiscoveryRequest{Node: &controlv1.Node{Id: "x", Role: "router", Service: "gateway"}}, codes.InvalidArgument},
		{"not authorized", &controlv1.DiscoveryRequest{Node: &controlv1.Node{Id: "x", Role: RoleSidecar, Service: "users"}}, codes.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			err := openRaw(t, p.addr, tc.req).end()
			if status.Code(err) != tc.code {
				t.Fatalf("stream ended with %v, want %v", err, tc.code)
			}
		})
	}
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw")})
	if !r.recv().GetFull() {
		t.Error("an authorized gateway got no full state")
	}
	if len(p.srv.Status()) != 1 {
		t.Errorf("status lists %d proxies, want 1", len(p.srv.Status()))
	}
}

func TestDebounce(t *testing.T) {
	p := startPlane(t, ServerOptions{Debounce: 30 * time.Millisecond, MaxDebounce: 300 * time.Millisecond})
	cfg := mustConfig(t, meshYAML)
	p.srv.Update(mkState(t, 1, cfg, users(1)))
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw")})
	r.ack(r.recv())

	// 100 updates at once: few responses, and the last state arrives.
	for v := uint64(2); v <= 101; v++ {
		p.srv.Update(mkState(t, v, cfg, users(1+int(v%7))))
	}
	last := ""
	for n := 0; last != "101"; n++ {
		if n == 10 {
			t.Fatalf("more than 10 responses for one burst; last version %s", last)
		}
		d := r.recv()
		last = d.GetVersionInfo()
		r.ack(d)
	}

	// A burst longer than MaxDebounce still pushes during the burst.
	before := p.counter(t, "meshgate_control_push_responses_total")
	start := time.Now()
	v := uint64(200)
	for time.Since(start) < time.Second {
		v++
		p.srv.Update(mkState(t, v, cfg, users(1+int(v%7))))
		select {
		case d := <-r.resps:
			r.ack(d)
		case <-time.After(5 * time.Millisecond):
		}
	}
	if p.counter(t, "meshgate_control_push_responses_total") == before {
		t.Error("no push during a 1s burst of updates with MaxDebounce 300ms")
	}
}

func TestCloseEndsStreams(t *testing.T) {
	p := startPlane(t, ServerOptions{})
	p.srv.Update(mkState(t, 1, mustConfig(t, meshYAML), nil))
	r := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw")})
	r.recv() // not answered
	waiting := openRaw(t, p.addr, &controlv1.DiscoveryRequest{Node: gatewayNode("gw-2"), ResourceVersions: map[string]string{"x/y": "1"}})
	waiting.recv()
	p.srv.Close()
	for _, s := range []*raw{r, waiting} {
		if err := s.end(); status.Code(err) != codes.Unavailable {
			t.Errorf("after Close the stream ended with %v", err)
		}
	}
}
