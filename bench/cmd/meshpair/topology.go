package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshgate/meshgate/bench/internal/procs"
)

// namespace is the mesh namespace of both services; the client's upstream port is bound to
// server.NAMESPACE.
const namespace = "bench"

// topology is everything the benchmark runs: the origin, the control plane and the two sidecars,
// with their loopback addresses.
type topology struct {
	origin, control, server, client *procs.Proc

	originAddr   string // the origin (nginx), what the server sidecar fronts
	controlAddr  string // the control plane's gRPC port
	controlAdmin string
	serverAdmin  string
	clientAdmin  string
	upstreamAddr string // the client sidecar's port bound to server.NAMESPACE: the mesh path's entry
}

// originConf is the origin: nginx, one worker, keep-alive, no access log, "ok\n" on /.
const originConf = `worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid {{DIR}}/origin.pid;
error_log {{DIR}}/origin-error.log warn;
events {
    worker_connections 8000;
    multi_accept off;
}
http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path {{DIR}}/tmp-body;
    proxy_temp_path {{DIR}}/tmp-proxy;
    fastcgi_temp_path {{DIR}}/tmp-fastcgi;
    uwsgi_temp_path {{DIR}}/tmp-uwsgi;
    scgi_temp_path {{DIR}}/tmp-scgi;
    server {
        listen {{ADDR}} backlog=4096;
        location = / {
            default_type text/plain;
            return 200 "ok\n";
        }
    }
}
`

// startTopology starts the origin, the control plane and both sidecars, and waits until both
// sidecars are ready. It does not send a request through the mesh: idle memory is read before.
func startTopology(ctx context.Context, o *options, ps *procs.Group, dir string) (*topology, error) {
	t := &topology{}
	addrs, err := procs.FreePorts(11)
	if err != nil {
		return nil, err
	}
	t.originAddr, t.controlAddr, t.controlAdmin = addrs[0], addrs[1], addrs[2]
	serverIn, serverOut := addrs[3], addrs[4]
	t.serverAdmin = addrs[5]
	clientIn, clientOut := addrs[6], addrs[7]
	t.clientAdmin, t.upstreamAddr = addrs[8], addrs[9]

	conf := strings.NewReplacer("{{DIR}}", dir, "{{ADDR}}", t.originAddr).Replace(originConf)
	confPath := filepath.Join(dir, "origin.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if t.origin, err = ps.Start("origin", procs.Pin(o.loadCPU, o.nice, "nginx", "-c", confPath, "-p", dir), nil, filepath.Join(dir, "origin.log")); err != nil {
		return nil, err
	}
	if err := procs.WaitListening(t.origin, t.originAddr, 10*time.Second); err != nil {
		return nil, err
	}

	// The control plane shares the load core: it is idle during the runs (heartbeats only).
	cpDir := filepath.Join(dir, "control")
	if t.control, err = ps.Start("control", procs.Pin(o.loadCPU, o.nice, o.meshgate, "control", "--data-dir", cpDir,
		"--listen", t.controlAddr, "--admin", t.controlAdmin, "--xds-listen", "off", "--log-level", "warn"),
		nil, filepath.Join(dir, "control.log")); err != nil {
		return nil, err
	}
	if err := waitReady(ctx, t.control, "http://"+t.controlAdmin+"/ready", 30*time.Second); err != nil {
		return nil, err
	}
	for _, f := range []string{"bundle.pem", "join-token"} {
		if _, err := os.Stat(filepath.Join(cpDir, f)); err != nil {
			return nil, fmt.Errorf("meshpair: the control plane wrote no %s: %w", f, err)
		}
	}

	// Each sidecar: one core, GOMAXPROCS as the proxies of bench/run, access log off (the default).
	env := []string{"GOMAXPROCS=" + strconv.Itoa(o.gomaxprocs)}
	sidecar := func(name, service, in, out, admin string, extra ...string) (*procs.Proc, error) {
		argv := []string{o.meshgate, "sidecar", "--control", t.controlAddr,
			"--control-ca", filepath.Join(cpDir, "bundle.pem"), "--join-token-file", filepath.Join(cpDir, "join-token"),
			"--data-dir", filepath.Join(dir, name), "--service", service, "--namespace", namespace,
			"--inbound", in, "--outbound", out, "--admin", admin, "--address", "127.0.0.1", "--log-level", "warn"}
		return ps.Start(name, procs.Pin(o.sidecarCPU, o.nice, append(argv, extra...)...), env, filepath.Join(dir, name+".log"))
	}
	// The server's workload port is the origin's; the client's workload port is never called.
	if t.server, err = sidecar("server-sidecar", "server", serverIn, serverOut, t.serverAdmin,
		"--port", "http="+portOf(t.originAddr)+"/http1"); err != nil {
		return nil, err
	}
	if t.client, err = sidecar("client-sidecar", "client", clientIn, clientOut, t.clientAdmin,
		"--port", "http="+portOf(addrs[10])+"/http1", "--upstream", "server."+namespace+"="+t.upstreamAddr); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		p     *procs.Proc
		admin string
	}{{t.server, t.serverAdmin}, {t.client, t.clientAdmin}} {
		if err := waitReady(ctx, p.p, "http://"+p.admin+"/ready", 30*time.Second); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// portOf is the port of a host:port.
func portOf(addr string) string {
	return addr[strings.LastIndexByte(addr, ':')+1:]
}

// waitReady polls url until it answers 200, p exits, or limit passes.
func waitReady(ctx context.Context, p *procs.Proc, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for i := 0; i < 2000 && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		if p.Exited() {
			return fmt.Errorf("meshpair: %s exited during start-up (%v); see %s", p.Name(), p.Err(), p.Log())
		}
		code, body, err := get(ctx, url, "")
		if err == nil && code == http.StatusOK {
			return nil
		}
		last = fmt.Sprint(code, " ", strings.TrimSpace(body), err)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("meshpair: %s not ready after %s (last: %s); see %s", p.Name(), limit, last, p.Log())
}

// get makes one GET request with a fresh connection and returns the status and body.
func get(ctx context.Context, url, host string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b), nil
}

// checkPaths makes sure both paths serve the origin's body before any load, waiting (bounded)
// for the client sidecar to learn the server's endpoint from the control plane.
func (t *topology) checkPaths(ctx context.Context) error {
	for _, u := range []string{"http://" + t.originAddr + "/", "http://" + t.upstreamAddr + "/"} {
		var last string
		ok := false
		for i := 0; i < 200 && ctx.Err() == nil; i++ {
			code, body, err := get(ctx, u, "")
			if err == nil && code == http.StatusOK && body == "ok\n" {
				ok = true
				break
			}
			last = fmt.Sprintf("%d %q %v", code, body, err)
			time.Sleep(50 * time.Millisecond)
		}
		if !ok {
			return fmt.Errorf("meshpair: %s does not serve the origin's body (last: %s)", u, last)
		}
	}
	return nil
}

// alive reports the first process of the topology that has exited.
func (t *topology) alive() error {
	for _, p := range []*procs.Proc{t.origin, t.control, t.server, t.client} {
		if p.Exited() {
			return fmt.Errorf("meshpair: %s exited (%v); see %s", p.Name(), p.Err(), p.Log())
		}
	}
	return nil
}
