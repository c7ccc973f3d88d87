package e2e

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// meshOrdersConfig declares orders/shop, open to every mesh workload.
const meshOrdersConfig = `
version: 1
services:
  - name: orders
    discovery: {service: orders, namespace: shop}
`

// Load shape of the resilience tests: bounded in rate, length and count.
const (
	loadRate = 200 // requests per second
	loadFor  = 6 * time.Second
	faultAt  = 2 * time.Second // when the fault is injected, from the load's start
)

// callerSeries are the metrics of a calling sidecar that say how it handled a failing
// endpoint.
var callerSeries = []string{"meshgate_upstream_connects_total", "meshgate_retry_", "meshgate_outlier_",
	"meshgate_mesh_handshakes_total", "meshgate_upstream_connections"}

// ordersReplica is one orders workload: nginx serving who.txt (its name) and its sidecar.
type ordersReplica struct {
	h     *meshHost
	nginx *Process
	sc    *meshSidecar
}

// ordersMesh is a mesh of orders replicas and a web workload calling them through its
// sidecar in explicit mode (127.0.0.1:15001 as its HTTP proxy).
type ordersMesh struct {
	m        *meshNet
	replicas []*ordersReplica
	web      *meshHost
	webSC    *meshSidecar
	client   *http.Client
}

// ordersURL is what web calls: orders through its sidecar.
const ordersURL = "http://orders.shop.mesh/who.txt"

// startOrdersMesh starts n orders replicas (orders-a, orders-b, ...) with transparent sidecars
// and web with an explicit-mode sidecar, and waits until web's calls reach every replica.
func startOrdersMesh(t *testing.T, n int, controlFlags ...string) *ordersMesh {
	t.Helper()
	om := &ordersMesh{m: newMeshNet(t, meshOrdersConfig, controlFlags...)}
	for i := range n {
		name := "orders-" + string(rune('a'+i))
		h := om.m.host(name)
		r := &ordersReplica{h: h, nginx: h.startNginx(map[string]string{"who.txt": name + "\n"})}
		r.sc = h.startSidecar("orders", true)
		om.replicas = append(om.replicas, r)
	}
	om.web = om.m.host("web")
	om.webSC = om.web.startSidecar("web", false)
	om.client = om.web.client("127.0.0.1:15001", 5*time.Second)
	t.Cleanup(om.client.CloseIdleConnections)
	seen := map[string]bool{}
	ok := pollUntil(configTimeout, func() bool {
		resp, err := om.client.Get(ordersURL)
		if err != nil {
			return false
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err == nil && resp.StatusCode == 200 {
			seen[strings.TrimSpace(string(b))] = true
		}
		return len(seen) == n
	})
	if !ok {
		t.Fatalf("web reached only %v of %d orders replicas within %v", seen, n, configTimeout)
	}
	return om
}

// kill9 kills a process at once (SIGKILL) and waits for it to be gone.
func kill9(t *testing.T, p *Process) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	if _, ok := p.wait(5 * time.Second); !ok {
		t.Fatalf("%s still running after SIGKILL", p.name)
	}
}

// TestMeshEndpointKilled kills one of two orders replicas in the middle of a bounded load
// from web: its workload (nginx) or its sidecar, with SIGKILL. Not one call may fail.
func TestMeshEndpointKilled(t *testing.T) {
	cases := []struct {
		desc string
		kill func(t *testing.T, r *ordersReplica)
		// gap, when set, names a known product gap: the case still runs and reports its
		// numbers, and is skipped instead of failed while calls fail.
		gap string
	}{
		{"workload killed", func(t *testing.T, r *ordersReplica) { kill9(t, r.nginx) }, ""},
		{"sidecar killed", func(t *testing.T, r *ordersReplica) { kill9(t, r.sc.Process) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			om := startOrdersMesh(t, 2)
			load := startLoad(om.client, ordersURL, loadRate, loadFor)
			time.Sleep(faultAt)
			tc.kill(t, om.replicas[1])
			t.Logf("%s of orders-b at %v", tc.desc, load.since().Round(time.Millisecond))
			res := load.wait()
			t.Logf("load: %s", res)
			t.Logf("web's sidecar:\n%s", om.webSC.metricLines(callerSeries...))
			if tc.gap != "" && len(res.Errors) != 0 {
				t.Skipf("known gap (%s): %d of %d calls failed", tc.gap, len(res.Errors), res.Sent)
			}
			if len(res.Errors) != 0 || res.OK != res.Sent {
				t.Errorf("%d of %d calls failed after one replica was killed", len(res.Errors), res.Sent)
			}
			if res.ByBody["orders-a"] == 0 || res.ByBody["orders-b"] == 0 {
				t.Errorf("answers by replica %v: want both before the kill", res.ByBody)
			}
		})
	}
}

// TestMeshLinkDown takes the link of one of two orders replicas down in the middle of a load:
// calls to it hang, outlier detection must eject it after a few failures, and from then on
// no call fails.
func TestMeshLinkDown(t *testing.T) {
	om := startOrdersMesh(t, 2)
	victim := om.replicas[1].h
	load := startLoad(om.client, ordersURL, loadRate, 2*loadFor)
	time.Sleep(faultAt)
	down := load.since()
	if out, err := exec.Command("ip", "link", "set", victim.veth, "down").CombinedOutput(); err != nil {
		t.Fatalf("ip link set %s down: %v: %s", victim.veth, err, out)
	}
	t.Logf("link of orders-b (%s) down at %v", victim.veth, down.Round(time.Millisecond))
	// Up again before the sidecars stop (cleanups run last first): a sidecar with calls hung on
	// the dead link overruns its drain timeout at SIGTERM.
	t.Cleanup(func() { _ = exec.Command("ip", "link", "set", victim.veth, "up").Run() })
	res := load.wait()
	t.Logf("load: %s", res)
	t.Logf("web's sidecar:\n%s", om.webSC.metricLines(callerSeries...))
	ejections := om.webSC.metric(`meshgate_outlier_ejections_total{reason="consecutive_connect_failures",service="orders"}`)
	t.Logf("outlier ejections of orders endpoints: %v", ejections)
	if len(res.Errors) == 0 {
		return
	}
	last := res.Errors[len(res.Errors)-1].At
	t.Logf("%d calls failed, the last sent %v after the link went down", len(res.Errors), (last - down).Round(time.Millisecond))
	// Mesh connections give up on a silent peer: the TCP connect after a second, unacknowledged
	// data after three (TCP_USER_TIMEOUT), keep-alive probes on idle ones; the failed calls are
	// retried elsewhere and connect failures eject the endpoint. Only calls already in flight on
	// the dead link may fail.
	if len(res.Errors) > 10 || last > down+4*time.Second {
		t.Errorf("%d of %d calls failed, the last sent %v after the link went down; want a few at most, all within 4s",
			len(res.Errors), res.Sent, (last - down).Round(time.Millisecond))
	}
}
