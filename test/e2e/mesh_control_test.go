package e2e

import (
	"io"
	"strings"
	"testing"
	"time"
)

// callOrders sends n calls from web to orders and fails the test on any that is not 200.
func callOrders(t *testing.T, om *ordersMesh, n int) {
	t.Helper()
	for i := range n {
		resp, err := om.client.Get(ordersURL)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "orders-") {
			t.Fatalf("call %d: %d %q (reason %q)", i, resp.StatusCode, b, resp.Header.Get("X-Meshgate-Reason"))
		}
	}
}

// TestMeshControlPlaneDown stops the control plane: calls go on, and web's sidecar, restarted
// with its own data directory while the control plane is still down, starts from its stored
// certificate and config and serves.
func TestMeshControlPlaneDown(t *testing.T) {
	om := startOrdersMesh(t, 2)
	om.m.plane.stop()
	callOrders(t, om, 20)
	om.webSC.restart()
	om.client.CloseIdleConnections()
	callOrders(t, om, 20)
}

// TestMeshCertRotation rotates the mesh's root and lets every sidecar renew its one-minute
// certificate (at half-life, so within the load) under a fixed-rate load: not one call may
// fail.
func TestMeshCertRotation(t *testing.T) {
	started := time.Now()
	om := startOrdersMesh(t, 2, "--cert-ttl", "1m", "--root-propagation", "1s")
	if code, stdout, stderr := om.m.plane.cli("", "control", "rotate-root"); code != 0 {
		t.Fatalf("rotate-root: exit %d\n%s%s", code, stdout, stderr)
	}
	before := om.webSC.certificates()
	// Certificates obtained at start renew 27-33s later; the load covers that window.
	time.Sleep(time.Until(started.Add(22 * time.Second)))
	load := startLoad(om.client, ordersURL, 1000, 14*time.Second)
	res := load.wait()
	t.Logf("load: %s", res)
	after := om.webSC.certificates()
	t.Logf("web's sidecar renewed its certificate %d times during the load", after-before)
	for _, r := range om.replicas {
		t.Logf("%s: %d certificates obtained; %s", r.h.label, r.sc.certificates(), r.sc.metricLines("meshgate_mesh_handshakes_total"))
	}
	if after <= before {
		t.Errorf("web's sidecar did not renew its certificate during the load (%v → %v)", before, after)
	}
	if len(res.Errors) != 0 || res.OK != res.Sent {
		t.Errorf("%d of %d calls failed across the rotation", len(res.Errors), res.Sent)
	}
}

// certificates counts the workload certificates the sidecar obtained (the first and every
// renewal), from its log.
func (s *meshSidecar) certificates() int {
	return strings.Count(s.stderr.String(), `"msg":"identity: certificate obtained"`)
}
