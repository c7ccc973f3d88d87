package e2e

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/testetcd"
)

// configTimeout bounds how long a config change may take to reach a gateway.
const configTimeout = 20 * time.Second

// TestControlStartsOnEmptyDataDir starts `meshgate control` with one command on an empty data
// directory: the trust bundle and a private join token appear, /ready answers 200 and
// `meshgate control status` names the replica and the trust domain.
func TestControlStartsOnEmptyDataDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	c := startControl(t, dir, newControlAddrs(t))

	if b, err := os.ReadFile(filepath.Join(dir, "bundle.pem")); err != nil || !bytes.Contains(b, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("bundle.pem: %v, %q", err, b)
	}
	fi, err := os.Stat(filepath.Join(dir, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("join-token mode %v, want 0600", fi.Mode().Perm())
	}
	if c.joinToken() == "" {
		t.Error("join-token is empty")
	}
	if code, body := c.adminGet("/ready"); code != 200 {
		t.Errorf("/ready: %d %s", code, body)
	}
	out := c.status()
	m := statusLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("status prints no replica line:\n%s", out)
	}
	if m[1] == "" || m[3] != "mesh.local" {
		t.Errorf("replica %q, trust domain %q in:\n%s", m[1], m[3], out)
	}
}

// goodConfig is a valid config with two routes, one of them to a service only it uses.
const goodConfig = `version: 1
listeners:
  - {name: public, address: "127.0.0.1:1", protocol: http}
routes:
  - name: users-api
    match: [{path: {prefix: /users}}]
    backends: [{service: users}]
  - name: orders-api
    match: [{path: {prefix: /orders}}]
    backends: [{service: orders}]
services:
  - name: users
    endpoints: [{address: "127.0.0.1:2"}]
  - name: orders
    endpoints: [{address: "127.0.0.1:3"}]
`

// badConfig has two errors on known lines.
const badConfig = `version: 1
listeners:
  - {name: public, address: "127.0.0.1:1"}
routes:
  - name: users-api
    match: [{path: {prefix: /users}}]
    timout: 5s
    backends: [{service: users}]
  - name: orders-api
    backendz: [{service: users}]
services:
  - name: users
    endpoints: [{address: "127.0.0.1:2"}]
`

// TestControlConfigLifecycle drives the config CLI against the binary: a broken file is refused
// with the same file:line errors `meshgate validate` prints and stores nothing; a good one becomes
// version 1; get, a refused delete, history and rollback.
func TestControlConfigLifecycle(t *testing.T) {
	t.Parallel()
	c := startControl(t, filepath.Join(t.TempDir(), "data"), newControlAddrs(t))
	wd := t.TempDir()
	for name, data := range map[string]string{"bad.yaml": badConfig, "good.yaml": goodConfig} {
		if err := os.WriteFile(filepath.Join(wd, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	code, stdout, stderr := c.cli(wd, "apply", "-f", "bad.yaml")
	if code != 1 {
		t.Fatalf("apply bad.yaml: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	_, vout, verr := runMeshgate(t, wd, "validate", "bad.yaml")
	wantLines := errorLines(vout + verr)
	if len(wantLines) < 2 {
		t.Fatalf("validate bad.yaml printed %d file:line errors:\n%s%s", len(wantLines), vout, verr)
	}
	for _, l := range wantLines {
		if !strings.Contains(stdout+stderr, l) {
			t.Errorf("apply bad.yaml does not print %q:\n%s%s", l, stdout, stderr)
		}
	}
	for _, want := range []string{"bad.yaml:7:", "bad.yaml:10:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("apply bad.yaml: no error at %s in:\n%s", want, stderr)
		}
	}
	if revs := historyRows(t, c, wd); len(revs) != 0 {
		t.Fatalf("history after a refused apply: %q", revs)
	}

	code, stdout, stderr = c.cli(wd, "apply", "-f", "good.yaml")
	if code != 0 || !strings.Contains(stdout, "version 1") {
		t.Fatalf("apply good.yaml: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = c.cli(wd, "get", "route", "orders-api")
	if code != 0 || !strings.Contains(stdout, "orders-api") || !strings.Contains(stdout, "/orders") || strings.Contains(stdout, "users-api") {
		t.Fatalf("get route orders-api: exit %d\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = c.cli(wd, "delete", "service", "orders")
	if code != 1 || !strings.Contains(stdout+stderr, "orders-api") {
		t.Fatalf("delete service orders (used by route orders-api): exit %d, want 1 naming the route\n%s%s", code, stdout, stderr)
	}

	code, stdout, stderr = c.cli(wd, "delete", "route", "orders-api")
	if code != 0 || !strings.Contains(stdout, "version 2") {
		t.Fatalf("delete route orders-api: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = c.cli(wd, "get", "route", "orders-api"); code == 0 {
		t.Fatalf("get route orders-api after its deletion: exit 0\n%s%s", stdout, stderr)
	}

	revs := historyRows(t, c, wd)
	if len(revs) != 2 || !strings.HasPrefix(revs[0], "2 ") || !strings.HasPrefix(revs[1], "1 ") || !strings.Contains(revs[1], "good.yaml") {
		t.Fatalf("history: want versions 2 and 1 (from good.yaml), newest first:\n%s", strings.Join(revs, "\n"))
	}

	code, stdout, stderr = c.cli(wd, "rollback", "1")
	if code != 0 || !strings.Contains(stdout, "config version 3") {
		t.Fatalf("rollback 1: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr = c.cli(wd, "get", "route", "orders-api"); code != 0 || !strings.Contains(stdout, "orders-api") {
		t.Fatalf("get route orders-api after rollback 1: exit %d\n%s%s", code, stdout, stderr)
	}
	if revs := historyRows(t, c, wd); len(revs) != 3 || !strings.HasPrefix(revs[0], "3 ") {
		t.Fatalf("history after rollback: %q", revs)
	}
}

// fileLineError matches an error line that names its file and line.
var fileLineError = regexp.MustCompile(`(?m)^bad\.yaml:\d+: .*$`)

// errorLines returns the file:line error lines in out.
func errorLines(out string) []string {
	return fileLineError.FindAllString(out, -1)
}

// historyRows runs `meshgate history` and returns its rows without the header.
func historyRows(t *testing.T, c *ControlPlane, wd string) []string {
	t.Helper()
	code, stdout, stderr := c.cli(wd, "history")
	if code != 0 {
		t.Fatalf("history: exit %d\n%s%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "VERSION") {
		t.Fatalf("history: no header in %q", stdout)
	}
	return lines[1:]
}

// meshConfig routes everything on a listener to the mesh service users/shop.
const meshConfig = `version: 1
listeners:
  - {name: public, address: "{{PUBLIC}}", protocol: http}
routes:
  - name: users-api
    backends: [{service: users}]
services:
  - name: users
    discovery: {service: users, namespace: shop}
`

// startUsers starts nginx as the workload of users/shop, registered with c and heartbeating,
// and returns the text it serves at /hello.txt.
func startUsers(t *testing.T, c *ControlPlane) string {
	t.Helper()
	const hello = "hello from users in shop\n"
	ngx := startNginx(t, map[string]string{"hello.txt": hello})
	_, portText, _ := net.SplitHostPort(ngx)
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	cert := c.sign("spiffe://mesh.local/ns/shop/sa/users")
	c.registerWorkload(cert, &controlv1.Workload{
		Id: "users-1", Service: "users", Namespace: "shop", Addresses: []string{"127.0.0.1"},
		Ports: []*controlv1.Port{{Name: "http", Port: uint32(port), Protocol: "http1"}},
	})
	return hello
}

// applyText writes data to a file and applies it to c, failing the test when it is refused.
func applyText(t *testing.T, c *ControlPlane, data string) {
	t.Helper()
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "mesh.yaml"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := c.cli(wd, "apply", "-f", "mesh.yaml"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, stdout, stderr)
	}
}

// gatewayRow matches the gateway's row in `meshgate control status`.
var gatewayRow = regexp.MustCompile(`(?m)^gateway-\S+\s+gateway\s+default/gateway\s+.*$`)

// waitGatewayRow polls `meshgate control status` until the gateway's row contains want.
func waitGatewayRow(t *testing.T, c *ControlPlane, want string) string {
	t.Helper()
	var out string
	ok := pollUntil(configTimeout, func() bool {
		out = c.status()
		row := gatewayRow.FindString(out)
		return strings.Contains(row, want)
	})
	if !ok {
		t.Fatalf("control status: no gateway row with %q within %v:\n%s", want, configTimeout, out)
	}
	return gatewayRow.FindString(out)
}

// TestControlGatewayWorkload runs a gateway on the control plane in front of nginx registered as
// the workload of users/shop: traffic flows once the config arrives, keeps flowing with the
// control plane down, and after a gateway restart with the control plane still down (from its
// cached config); the gateway reconnects when the control plane comes back.
func TestControlGatewayWorkload(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	c := startControl(t, dir, newControlAddrs(t))
	hello := startUsers(t, c)
	public := freeAddr(t)
	applyText(t, c, fill(meshConfig, "PUBLIC", public))

	gwDir, gwAdmin := filepath.Join(t.TempDir(), "gw"), freeAddr(t)
	gw := startControlGateway(t, c, gwDir, gwAdmin)
	url := "http://" + public + "/hello.txt"
	waitServes(t, configTimeout, url, hello)
	if r := runCurl(t, url); r.Status != 200 || r.Body != hello {
		t.Fatalf("curl through the gateway: %d %q", r.Status, r.Body)
	}
	waitGatewayRow(t, c, "in sync")

	// The control plane goes away: the gateway keeps serving.
	addrs := c.addrs()
	c.stop()
	for i := range 5 { // spread over a second, while the gateway loses its stream and retries
		if r := runCurl(t, url); r.Status != 200 || r.Body != hello {
			t.Fatalf("curl %d with the control plane down: %d %q", i, r.Status, r.Body)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The gateway restarts while the control plane is down: it serves its cached config.
	gw.stop()
	startControlGateway(t, c, gwDir, gwAdmin)
	waitServes(t, configTimeout, url, hello)
	if r := runCurl(t, url); r.Status != 200 || r.Body != hello {
		t.Fatalf("curl through the restarted gateway from its cached config: %d %q", r.Status, r.Body)
	}

	// The control plane comes back on the same data directory: the gateway reconnects.
	c2 := startControl(t, dir, addrs)
	waitGatewayRow(t, c2, "in sync")
	if r := runCurl(t, url); r.Status != 200 || r.Body != hello {
		t.Fatalf("curl after the control plane came back: %d %q", r.Status, r.Body)
	}
}

// TestControlGatewayNACK applies a config whose new listener address is held by another socket:
// the gateway cannot bind it and NACKs, keeps serving the previous config, and
// `meshgate control status` shows the NACK with the bind error.
func TestControlGatewayNACK(t *testing.T) {
	t.Parallel()
	c := startControl(t, filepath.Join(t.TempDir(), "data"), newControlAddrs(t))
	hello := startUsers(t, c)
	public := freeAddr(t)
	applyText(t, c, fill(meshConfig, "PUBLIC", public))
	startControlGateway(t, c, filepath.Join(t.TempDir(), "gw"), freeAddr(t))
	url := "http://" + public + "/hello.txt"
	waitServes(t, configTimeout, url, hello)
	waitGatewayRow(t, c, "in sync")

	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	applyText(t, c, fill(meshConfig, "PUBLIC", held.Addr().String()))

	row := waitGatewayRow(t, c, "NACK")
	t.Logf("status row: %s", row)
	if !strings.Contains(row, held.Addr().String()) || !strings.Contains(row, "address already in use") {
		t.Errorf("the NACK does not carry the bind error for %s: %s", held.Addr(), row)
	}
	if r := runCurl(t, url); r.Status != 200 || r.Body != hello {
		t.Fatalf("curl on the previous listener after the NACK: %d %q", r.Status, r.Body)
	}
}

// TestControlReplicasOnEtcd runs two control plane replicas on one real etcd: they share the CA
// (identical bundle.pem), agree on a leader, and see each other's applies; with etcd down an
// apply fails saying the store is unavailable, and works again once etcd is back.
func TestControlReplicasOnEtcd(t *testing.T) {
	t.Parallel()
	etcd := testetcd.Start(t)
	endpoint := strings.Join(etcd.Endpoints, ",")
	a := startControl(t, filepath.Join(t.TempDir(), "a"), newControlAddrs(t), "--etcd", endpoint)
	b := startControl(t, filepath.Join(t.TempDir(), "b"), newControlAddrs(t), "--etcd", endpoint)

	bundleA, errA := os.ReadFile(filepath.Join(a.Dir, "bundle.pem"))
	bundleB, errB := os.ReadFile(filepath.Join(b.Dir, "bundle.pem"))
	if errA != nil || errB != nil || len(bundleA) == 0 || !bytes.Equal(bundleA, bundleB) {
		t.Fatalf("the replicas' bundle.pem differ (%v, %v):\n%s\n---\n%s", errA, errB, bundleA, bundleB)
	}

	var leaderA, leaderB, outA, outB string
	ok := pollUntil(15*time.Second, func() bool {
		outA, outB = a.status(), b.status()
		ma, mb := statusLine.FindStringSubmatch(outA), statusLine.FindStringSubmatch(outB)
		if ma == nil || mb == nil {
			return false
		}
		leaderA, leaderB = ma[2], mb[2]
		return leaderA != "" && leaderA == leaderB && ma[1] != mb[1]
	})
	if !ok {
		t.Fatalf("the replicas do not name the same leader:\n%s\n---\n%s", outA, outB)
	}

	wd := t.TempDir()
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(wd, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yaml", goodConfig)
	if code, stdout, stderr := a.cli(wd, "apply", "-f", "good.yaml"); code != 0 {
		t.Fatalf("apply on replica A: exit %d\n%s%s", code, stdout, stderr)
	}
	var got string
	if !pollUntil(10*time.Second, func() bool {
		code, stdout, _ := b.cli(wd, "get", "route", "orders-api")
		got = stdout
		return code == 0 && strings.Contains(stdout, "/orders")
	}) {
		t.Fatalf("replica B does not serve the route applied on A: %q", got)
	}

	etcd.Stop()
	code, stdout, stderr := a.cli(wd, "apply", "-f", "good.yaml")
	if code != 1 || !strings.Contains(stderr, "unavailable") {
		t.Fatalf("apply with etcd down: exit %d, want 1 saying the store is unavailable\n%s%s", code, stdout, stderr)
	}
	t.Logf("apply with etcd down: %s", strings.TrimSpace(stderr))

	etcd.Restart()
	write("changed.yaml", strings.Replace(goodConfig, "/orders", "/orders-v2", 1))
	if !pollUntil(15*time.Second, func() bool {
		code, stdout, stderr = a.cli(wd, "apply", "-f", "changed.yaml")
		return code == 0
	}) {
		t.Fatalf("apply after etcd came back: exit %d\n%s%s", code, stdout, stderr)
	}
	if !pollUntil(10*time.Second, func() bool {
		code, stdout, _ := b.cli(wd, "get", "route", "orders-api")
		got = stdout
		return code == 0 && strings.Contains(stdout, "/orders-v2")
	}) {
		t.Fatalf("replica B does not serve the route applied on A after etcd came back: %q", got)
	}
}
