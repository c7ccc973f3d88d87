package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/mesh/mtls"
	"github.com/meshgate/meshgate/internal/testpki"
)

// meshSecurityConfig declares orders/shop, callable only by the web identity.
const meshSecurityConfig = `
version: 1
services:
  - name: orders
    discovery: {service: orders, namespace: shop}
    authz:
      default: deny
      rules:
        - {name: web-only, action: allow, identities: ["spiffe://mesh.local/ns/shop/sa/web"]}
`

// Series of the sidecar's metrics the tests read.
const (
	refusedMTLSRequired = `meshgate_sidecar_refused_connections_total{direction="inbound",reason="mtls_required"}`
	refusedMeshTLS      = `meshgate_sidecar_refused_connections_total{direction="inbound",reason="mesh_tls_failed"}`
	refusedProtocol     = `meshgate_sidecar_refused_connections_total{direction="inbound",reason="protocol_mismatch"}`
	refusedUnknownDest  = `meshgate_sidecar_refused_connections_total{direction="outbound",reason="unknown_destination"}`
)

// TestMeshSecurity runs the orders workload (nginx) behind a transparent sidecar in its own
// network namespace, called by web and batch (transparent sidecars, curl resolving
// orders.shop.mesh through the sidecar's DNS) and by an outsider namespace with no sidecar.
func TestMeshSecurity(t *testing.T) {
	m := newMeshNet(t, meshSecurityConfig)
	const secret = "response-body-marker-5d1c0e"
	orders := m.host("orders")
	orders.startNginx(map[string]string{"secret.txt": secret + "\n"})
	ordersSC := orders.startSidecar("orders", true)
	web := m.host("web")
	web.useMeshDNS()
	webSC := web.startSidecar("web", true)
	batch := m.host("batch")
	batch.useMeshDNS()
	batch.startSidecar("batch", true)
	outsider := m.host("outsider")
	ordersApp := netip.AddrPortFrom(orders.addr, meshAppPort).String()
	ordersInbound := netip.AddrPortFrom(orders.addr, meshInboundPort).String()

	t.Run("ciphertext on the wire", func(t *testing.T) {
		const pathMarker, headerMarker = "path-marker-93b7aa", "header-marker-41f0c2"
		capture := startCapture(t, orders)
		r := web.waitCurl(200, "-H", "X-Marker: "+headerMarker, "http://orders.shop.mesh/secret.txt?q="+pathMarker)
		if !strings.Contains(r.Body, secret) {
			t.Fatalf("web → orders: body %q, want the secret file", r.Body)
		}
		pcap := capture.stop()
		for _, marker := range []string{pathMarker, headerMarker, secret} {
			if bytes.Contains(pcap, []byte(marker)) {
				t.Errorf("%q crossed orders' link in cleartext", marker)
			}
		}
		// The ClientHello is visible: a TLS handshake record and the mesh server name.
		if !bytes.Contains(pcap, []byte(mtls.ServerName("http"))) || !bytes.Contains(pcap, []byte{0x16, 0x03, 0x01}) {
			t.Errorf("no TLS handshake to orders in the capture (%d bytes)", len(pcap))
		}
		t.Logf("capture on %s: %d bytes, no marker in cleartext", orders.veth, len(pcap))
	})

	t.Run("plaintext from outside the mesh is refused", func(t *testing.T) {
		before := ordersSC.metric(refusedMTLSRequired)
		for _, addr := range []string{ordersApp, ordersInbound} {
			r, err := outsider.curl("http://" + addr + "/secret.txt")
			if err != nil {
				t.Fatalf("outsider → %s: %v", addr, err)
			}
			if r.Status != 403 || r.Header.Get("X-Meshgate-Reason") != "mtls_required" || strings.Contains(r.Body, secret) {
				t.Errorf("outsider → %s: %d %q %q, want 403 mtls_required", addr, r.Status, r.Header.Get("X-Meshgate-Reason"), r.Body)
			}
		}
		if got := ordersSC.metric(refusedMTLSRequired) - before; got != 2 {
			t.Errorf("refused mtls_required counted %v times, want 2", got)
		}
	})

	t.Run("a workload without a valid certificate is refused", func(t *testing.T) {
		foreign := testpki.New(t, t.TempDir())
		meshCert := m.plane.sign("spiffe://mesh.local/ns/shop/sa/web")
		cases := []struct {
			desc string
			cert *tls.Certificate
			// result is the handshake metric's result label for this peer.
			result string
		}{
			{"certificate from the mesh CA", meshCert, "ok"},
			{"mesh identity signed by another CA", certOf(foreign.Client("web-impostor", "shop", "spiffe://mesh.local/ns/shop/sa/web")), mtls.FailureUntrusted},
			{"another trust domain", certOf(foreign.Client("web-evil", "evil", "spiffe://evil.example/ns/shop/sa/web")), mtls.FailureForeignDomain},
			{"no certificate", nil, mtls.FailureNoCertificate},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				series := `meshgate_mesh_handshakes_total{direction="inbound",result="` + tc.result + `"}`
				before, beforeResult := ordersSC.metric(refusedMeshTLS), ordersSC.metric(series)
				defer func() {
					if got := ordersSC.metric(series) - beforeResult; got != 1 {
						t.Errorf("%s went up by %v, want 1", series, got)
					}
				}()
				err := meshHandshake(outsider, ordersInbound, tc.cert, mtls.ALPNHTTP2)
				if tc.result == "ok" {
					if err != nil {
						t.Fatalf("handshake with a mesh certificate: %v", err)
					}
					return
				}
				if err == nil {
					t.Fatal("handshake succeeded")
				}
				if !pollUntil(5*time.Second, func() bool { return ordersSC.metric(refusedMeshTLS) == before+1 }) {
					t.Errorf("refusal not counted: %s went from %v to %v", refusedMeshTLS, before, ordersSC.metric(refusedMeshTLS))
				}
			})
		}
	})

	t.Run("authorization by identity", func(t *testing.T) {
		r := web.waitCurl(200, "http://orders.shop.mesh/secret.txt")
		if !strings.Contains(r.Body, secret) {
			t.Errorf("web: body %q", r.Body)
		}
		r = batch.waitCurl(403, "http://orders.shop.mesh/secret.txt")
		if reason := r.Header.Get("X-Meshgate-Reason"); reason != "authz_denied" || strings.Contains(r.Body, secret) {
			t.Errorf("batch: 403 %q %q, want authz_denied", reason, r.Body)
		}
	})

	t.Run("unknown destination from a transparent workload", func(t *testing.T) {
		for _, target := range []string{"240.240.255.254:80", ordersApp} {
			before := webSC.metric(refusedUnknownDest)
			r, err := web.curl("http://" + target + "/secret.txt")
			if err == nil {
				t.Errorf("web → %s: %d %q, want the connection refused", target, r.Status, r.Body)
			}
			if got := webSC.metric(refusedUnknownDest) - before; got != 1 {
				t.Errorf("web → %s: unknown_destination counted %v times, want 1 (%v)", target, got, err)
			}
		}
	})

	t.Run("protocol mismatch", func(t *testing.T) {
		before := ordersSC.metric(refusedProtocol)
		cert := m.plane.sign("spiffe://mesh.local/ns/shop/sa/web")
		if err := meshHandshake(outsider, ordersInbound, cert, mtls.ALPNTCP); err == nil {
			t.Fatal("opaque TCP to an HTTP port was accepted")
		}
		if !pollUntil(5*time.Second, func() bool { return ordersSC.metric(refusedProtocol) == before+1 }) {
			t.Errorf("protocol_mismatch not counted once: %v → %v", before, ordersSC.metric(refusedProtocol))
		}
	})
}

// certOf returns the key pair of f.
func certOf(f testpki.Files) *tls.Certificate { return &f.Pair }

// meshHandshake connects from h to a sidecar's inbound port as a mesh peer would (TLS 1.3,
// the server name of the workload's "http" port, ALPN alpn) presenting cert (none when nil),
// and reads from the connection: a refused peer sees the handshake fail or the connection end.
// It returns nil when the sidecar kept the connection open (with TLS 1.3 its verdict on the
// client's certificate arrives with the first read) and, for ALPN h2, sent its HTTP/2 SETTINGS.
func meshHandshake(h *meshHost, addr string, cert *tls.Certificate, alpn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := h.dial(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
		ServerName: mtls.ServerName("http")}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c := tls.Client(raw, cfg)
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := c.HandshakeContext(ctx); err != nil {
		return err
	}
	if alpn == mtls.ALPNHTTP2 {
		if _, err := io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
			return err
		}
	}
	buf := make([]byte, 9)
	_, err = io.ReadFull(c, buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil // open and silent: accepted
	}
	if err != nil {
		return err
	}
	if alpn == mtls.ALPNHTTP2 && buf[3] != 0x4 {
		return errors.New("mesh handshake: the first frame is not SETTINGS")
	}
	return nil
}

// pcapCapture is tcpdump writing what crosses one interface to a file.
type pcapCapture struct {
	t    *testing.T
	p    *Process
	file string
}

// startCapture captures the TCP traffic on the host end of h's veth until stop.
func startCapture(t *testing.T, h *meshHost) *pcapCapture {
	t.Helper()
	bin := requireTool(t, "tcpdump")
	file := filepath.Join(t.TempDir(), "capture.pcap")
	// --immediate-mode and -U write each packet as it arrives; -Z root keeps tcpdump able to write the file.
	p := startProcess(t, "tcpdump on "+h.veth, bin, "-i", h.veth, "-n", "-U", "--immediate-mode", "-s", "0", "-Z", "root", "-w", file, "tcp")
	if !pollUntil(10*time.Second, func() bool { return p.exited() || strings.Contains(p.stderr.String(), "listening on") }) || p.exited() {
		t.Fatalf("tcpdump did not start on %s: %s", h.veth, p.stderr.String())
	}
	return &pcapCapture{t: t, p: p, file: file}
}

// stop ends the capture and returns the pcap file's bytes.
func (c *pcapCapture) stop() []byte {
	c.t.Helper()
	time.Sleep(200 * time.Millisecond) // the last packets reach the file
	c.p.stop()
	b, err := os.ReadFile(c.file)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("tcpdump: %s", strings.TrimSpace(strings.ReplaceAll(c.p.stderr.String(), "\n", "; ")))
	return b
}
