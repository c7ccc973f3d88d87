package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/meshgate/meshgate/internal/mesh/netns"
)

// Fixed ports inside every workload namespace (each namespace has its own port space).
const (
	// meshAppPort is where a workload's nginx listens in its namespace.
	meshAppPort = 8080
	// meshInboundPort, meshOutboundPort and meshAdminPort are the sidecar's defaults.
	meshInboundPort  = 15006
	meshOutboundPort = 15001
	meshAdminPort    = 15020
	// meshControlPort is where the control plane listens on the bridge address.
	meshControlPort = 15012
)

// meshNet is a host bridge with an address, the control plane listening on that address, and
// the workload namespaces attached to the bridge.
type meshNet struct {
	t      *testing.T
	subnet netip.Prefix
	bridge *netns.Bridge
	plane  *ControlPlane
	hosts  byte // the last host number handed out on the subnet
}

// meshHost is one workload's network namespace, attached to the bridge.
type meshHost struct {
	m *meshNet
	// label names the host in logs ("orders-a").
	label string
	ns    *netns.Namespace
	// addr is the namespace's address on the bridge; veth the host-side interface name.
	addr netip.Addr
	veth string
}

// meshSidecar is a `meshgate sidecar` running in a workload's namespace.
type meshSidecar struct {
	*Process
	h *meshHost
	// service, dataDir and args are what it was started with, so it can be restarted.
	service, dataDir string
	args             []string
}

// requireMesh skips the test when network namespaces cannot be made here, and fails it when a
// program the mesh tests run is missing.
func requireMesh(t *testing.T) {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skipf("mesh end-to-end tests need network namespaces (run as root): %v", err)
	}
	for _, tool := range []string{"ip", "nginx", "curl"} {
		requireTool(t, tool)
	}
}

// newMeshNet creates a bridge on a free test subnet, starts the control plane on the bridge
// address with extra flags, and applies cfg. Everything is removed when the test ends.
func newMeshNet(t *testing.T, cfg string, controlFlags ...string) *meshNet {
	t.Helper()
	requireMesh(t)
	m := &meshNet{t: t, subnet: meshSubnet(t), hosts: 1}
	br, err := netns.NewBridge(netns.RandomName("mgb"), hostPrefix(m.subnet, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := br.Delete(); err != nil {
			t.Errorf("delete bridge: %v", err)
		}
	})
	m.bridge = br
	a := controlAddrs{grpc: netip.AddrPortFrom(m.bridgeAddr(), meshControlPort).String(), xds: "off", admin: freeAddr(t)}
	m.plane = startControl(t, t.TempDir(), a, controlFlags...)
	if cfg != "" {
		applyText(t, m.plane, cfg)
	}
	return m
}

// meshSubnet returns a random /24 in 198.18.0.0/15 (the benchmarking range) that the host has
// no direct route to yet.
func meshSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	for range 20 {
		p := netip.MustParsePrefix(fmt.Sprintf("198.%d.%d.0/24", 18+rand.IntN(2), rand.IntN(256)))
		routes, err := netlink.RouteGet(p.Addr().Next().AsSlice())
		if err == nil && len(routes) > 0 && routes[0].Gw == nil {
			continue
		}
		return p
	}
	t.Fatal("no free test subnet")
	return netip.Prefix{}
}

// hostPrefix is host number n of the /24 p, with p's length.
func hostPrefix(p netip.Prefix, n byte) netip.Prefix {
	a := p.Addr().As4()
	a[3] = n
	return netip.PrefixFrom(netip.AddrFrom4(a), p.Bits())
}

// bridgeAddr is the host's address on the bridge.
func (m *meshNet) bridgeAddr() netip.Addr { return m.bridge.Addr.Addr() }

// host creates a namespace attached to the bridge with the next free address.
func (m *meshNet) host(label string) *meshHost {
	t := m.t
	t.Helper()
	m.hosts++
	ns, err := netns.Create(netns.RandomName("mgw-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Errorf("delete namespace %s (%s): %v", ns.Name, label, err)
		}
	})
	h := &meshHost{m: m, label: label, ns: ns, addr: hostPrefix(m.subnet, m.hosts).Addr(), veth: netns.RandomName("mgv")}
	if err := m.bridge.Attach(ns, h.veth, hostPrefix(m.subnet, m.hosts)); err != nil {
		t.Fatal(err)
	}
	return h
}

// useMeshDNS points the namespace's resolver at the bridge address (a non-loopback server, so
// the transparent sidecar's DNS capture answers for the .mesh zone): `ip netns exec` binds
// /etc/netns/NS/resolv.conf over /etc/resolv.conf. The file is removed when the test ends.
func (h *meshHost) useMeshDNS() {
	t := h.m.t
	t.Helper()
	dir := filepath.Join("/etc/netns", h.ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	conf := "nameserver " + h.m.bridgeAddr().String() + "\noptions timeout:2 attempts:2\n"
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startNginx runs a single-process nginx in the namespace on 0.0.0.0:meshAppPort serving files
// (plus the routes of nginxConf), and waits until it accepts connections.
func (h *meshHost) startNginx(files map[string]string) *Process {
	t := h.m.t
	t.Helper()
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(www, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	text := fill(nginxConf, "USER", "user root root;", "DIR", dir, "ADDR", "0.0.0.0:"+strconv.Itoa(meshAppPort))
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// One process (no master): kill -9 on it ends the workload at once.
	p := startProcess(t, "nginx in "+h.label, "ip", "netns", "exec", h.ns.Name, requireTool(t, "nginx"),
		"-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off; master_process off;")
	ok := pollUntil(10*time.Second, func() bool {
		if p.exited() {
			return true
		}
		c, err := h.dial(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(meshAppPort))
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
	if !ok || p.exited() {
		t.Fatalf("nginx in %s did not start listening", h.label)
	}
	return p
}

// startSidecar runs `meshgate sidecar` for service (namespace shop, port http=meshAppPort) in
// the namespace, in transparent mode or not, with extra flags, and waits until it is ready.
func (h *meshHost) startSidecar(service string, transparent bool, extra ...string) *meshSidecar {
	h.m.t.Helper()
	args := []string{"--service", service, "--namespace", "shop",
		"--port", "http=" + strconv.Itoa(meshAppPort), "--address", h.addr.String()}
	if transparent {
		args = append(args, "--transparent")
	}
	s := &meshSidecar{h: h, service: service, dataDir: h.m.t.TempDir(), args: append(args, extra...)}
	s.start()
	return s
}

// start starts the sidecar process and waits until its admin API says it is ready.
func (s *meshSidecar) start() {
	h := s.h
	t := h.m.t
	t.Helper()
	plane := h.m.plane
	args := append([]string{"netns", "exec", h.ns.Name, meshgateBin, "sidecar",
		"--control", plane.GRPC, "--control-ca", filepath.Join(plane.Dir, "bundle.pem"),
		"--join-token-file", filepath.Join(plane.Dir, "join-token"), "--data-dir", s.dataDir,
		"--drain-delay", "100ms", "--drain-timeout", "3s", "--log-level", "debug"}, s.args...)
	s.Process = startProcess(t, "meshgate sidecar "+s.service+" in "+h.label, "ip", args...)
	s.waitReady()
}

// restart stops the sidecar (SIGTERM) and starts it again with the same flags and data
// directory.
func (s *meshSidecar) restart() {
	s.h.m.t.Helper()
	s.stop()
	s.start()
}

// waitReady polls the sidecar's /ready until it answers 200.
func (s *meshSidecar) waitReady() {
	t := s.h.m.t
	t.Helper()
	var last string
	ok := pollUntil(readyTimeout, func() bool {
		if s.exited() {
			return true
		}
		code, body, err := s.h.get(s.adminURL("/ready"))
		last = fmt.Sprintf("%d %s %v", code, strings.TrimSpace(body), err)
		return err == nil && code == http.StatusOK
	})
	if s.exited() {
		code, _ := s.wait(0)
		t.Fatalf("sidecar %s in %s exited with code %d before it was ready", s.service, s.h.label, code)
	}
	if !ok {
		t.Fatalf("sidecar %s in %s not ready within %v: %s", s.service, s.h.label, readyTimeout, last)
	}
}

// adminURL is the URL of path on the sidecar's admin API (loopback inside its namespace).
func (s *meshSidecar) adminURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(meshAdminPort) + path
}

// metric returns the value of one series of the sidecar's metrics, or 0 when absent.
func (s *meshSidecar) metric(series string) float64 {
	t := s.h.m.t
	t.Helper()
	code, body, err := s.h.get(s.adminURL("/metrics"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("sidecar %s metrics: %d %v", s.service, code, err)
	}
	return metricValue(body, series)
}

// dial connects from inside the namespace.
func (h *meshHost) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.ns.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// client returns an HTTP client whose connections start inside the namespace. proxy, when not
// empty, is an HTTP proxy address (a sidecar's explicit outbound port) it sends every request
// through.
func (h *meshHost) client(proxy string, timeout time.Duration) *http.Client {
	tr := &http.Transport{DialContext: h.dial, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	if proxy != "" {
		tr.Proxy = http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get sends one GET from inside the namespace and returns the status and body.
func (h *meshHost) get(u string) (int, string, error) {
	c := h.client("", 2*time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), err
}

// curl runs curl inside the namespace (`ip netns exec`, so /etc/netns/NS/resolv.conf applies)
// and returns the final response; err is curl's failure (exit status and message), if any.
func (h *meshHost) curl(args ...string) (curlResult, error) {
	t := h.m.t
	t.Helper()
	dir := t.TempDir()
	hdrFile, bodyFile := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	full := append([]string{"netns", "exec", h.ns.Name, requireTool(t, "curl"), "-q", "-sS", "--noproxy", "*",
		"--max-time", "10", "-D", hdrFile, "-o", bodyFile, "-w", "%{http_code} %{http_version}"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var r curlResult
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("curl %s in %s: %w: %s", strings.Join(args, " "), h.label, err, strings.TrimSpace(stderr.String()))
	}
	if _, err := fmt.Sscanf(stdout.String(), "%d %s", &r.Status, &r.Version); err != nil {
		return r, fmt.Errorf("curl %s: cannot parse %q: %w", strings.Join(args, " "), stdout.String(), err)
	}
	if head, err := os.ReadFile(hdrFile); err == nil {
		r.Header = parseLastHead(string(head))
	}
	if body, err := os.ReadFile(bodyFile); err == nil {
		r.Body = string(body)
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return r, nil
}

// waitCurl repeats curl in the namespace until it answers want (a status), failing the test
// after configTimeout; it returns the last response.
func (h *meshHost) waitCurl(want int, args ...string) curlResult {
	t := h.m.t
	t.Helper()
	var r curlResult
	var err error
	ok := pollUntil(configTimeout, func() bool {
		r, err = h.curl(args...)
		return err == nil && r.Status == want
	})
	if !ok {
		t.Fatalf("curl %s in %s: want %d within %v, last %d %q %v (reason %q)", strings.Join(args, " "), h.label,
			want, configTimeout, r.Status, strings.TrimSpace(r.Body), err, r.Header.Get("X-Meshgate-Reason"))
	}
	return r
}

// metricLines returns the lines of the sidecar's metrics exposition whose series start with
// one of prefixes, for logs.
func (s *meshSidecar) metricLines(prefixes ...string) string {
	_, body, err := s.h.get(s.adminURL("/metrics"))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, line := range strings.Split(body, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
