package sidecar

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshgate/meshgate/internal/mesh/mtls"
	"github.com/meshgate/meshgate/internal/testpki"
)

const meshConfig = `
version: 1
services:
  - name: orders
    discovery: {service: orders, namespace: shop}
    authz:
      default: deny
      rules:
        - {name: web-reads, action: allow, identities: ["spiffe://mesh.local/ns/shop/sa/web"], methods: [GET]}
  - name: ledger
    discovery: {service: ledger, namespace: shop}
    authz:
      default: deny
      rules:
        - {name: web-only, action: allow, identities: ["spiffe://mesh.local/ns/shop/sa/web"]}
`

func TestSidecarToSidecar(t *testing.T) {
	m := startMesh(t, meshConfig)
	orders := m.sidecar("orders", []Port{app(t, "orders")}, nil)
	m.sidecar("ledger", []Port{echo(t)}, nil)
	web := m.sidecar("web", []Port{app(t, "web")}, func(o *Options) { o.Upstreams = map[string]string{"ledger": "127.0.0.1:0"} })
	batch := m.sidecar("batch", []Port{app(t, "batch")}, nil)

	t.Run("HTTP over mutual TLS, authorized by identity", func(t *testing.T) {
		var status int
		var body string
		eventually(t, "web reaches orders", func() bool {
			status, _, body = call(t, web, "orders.shop.mesh", "/items")
			return status == 200
		})
		if body != "orders /items" {
			t.Fatalf("body %q", body)
		}
		if st, _, b := call(t, web, "orders", "/short-name"); st != 200 || b != "orders /short-name" {
			t.Fatalf("short name in the same namespace: %d %q", st, b)
		}
	})
	t.Run("denied by identity", func(t *testing.T) {
		var status int
		var reason string
		eventually(t, "batch gets an answer from orders", func() bool {
			status, reason, _ = call(t, batch, "orders.shop.mesh", "/items")
			return status != 503
		})
		if status != 403 || reason != "authz_denied" {
			t.Fatalf("batch → orders: %d %q, want 403 authz_denied", status, reason)
		}
	})
	t.Run("unknown service", func(t *testing.T) {
		if st, reason, _ := call(t, web, "nothing.shop.mesh", "/"); st != 404 || reason != "no_route" {
			t.Fatalf("%d %q, want 404 no_route", st, reason)
		}
	})
	t.Run("opaque TCP over mutual TLS", func(t *testing.T) {
		addr := web.UpstreamAddr("ledger").String()
		eventually(t, "web relays TCP to ledger", func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.WriteString(c, "ping\n"); err != nil {
				return false
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			return err == nil && line == "ping\n"
		})
	})
	t.Run("certificate metrics on the sidecar's registry", func(t *testing.T) {
		families, err := orders.gw.Metrics().Prom.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == "meshgate_identity_certificate_expiry_timestamp_seconds" && len(f.GetMetric()) == 1 &&
				f.GetMetric()[0].GetGauge().GetValue() > float64(time.Now().Unix()) {
				return
			}
		}
		t.Fatal("the sidecar exports no certificate expiry in the future")
	})
	t.Run("plaintext refused by a strict service", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + orders.InboundAddr().String() + "/items")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get("X-Meshgate-Reason") != "mtls_required" {
			t.Fatalf("%d %q, want 403 mtls_required", resp.StatusCode, resp.Header.Get("X-Meshgate-Reason"))
		}
	})
	t.Run("a certificate from another trust domain is refused", func(t *testing.T) {
		pki := testpki.New(t, t.TempDir())
		cert := pki.Client("intruder", "evil", "spiffe://evil.example/ns/shop/sa/web")
		c, err := tls.Dial("tcp", orders.InboundAddr().String(), &tls.Config{
			Certificates: []tls.Certificate{cert.Pair}, InsecureSkipVerify: true, NextProtos: []string{"h2"},
			ServerName: mtls.ServerName("http"),
		})
		if err == nil {
			// TLS 1.3: the server's verdict on the client certificate arrives with the first read.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(make([]byte, 1))
			c.Close()
		}
		if err == nil || strings.Contains(err.Error(), "timeout") {
			t.Fatalf("handshake with a foreign certificate: %v", err)
		}
		eventually(t, "the refusal is counted", func() bool {
			return testutil.ToFloat64(orders.m.refused.WithLabelValues("inbound", "mesh_tls_failed")) >= 1
		})
	})
}

// TestSidecarRevocation: after an identity is revoked, its old certificate is refused by peers
// (and counted), while its sidecar gets a new certificate with the join token and its calls go
// on.
func TestSidecarRevocation(t *testing.T) {
	m := startMesh(t, "")
	orders := m.sidecar("orders", []Port{app(t, "orders")}, nil)
	web := m.sidecar("web", []Port{app(t, "web")}, nil)
	eventually(t, "web reaches orders", func() bool {
		st, _, _ := call(t, web, "orders.shop.mesh", "/")
		return st == 200
	})
	old, err := web.source.Load().TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(cert *tls.Certificate) error {
		c, err := tls.Dial("tcp", orders.InboundAddr().String(), &tls.Config{
			Certificates: []tls.Certificate{*cert}, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"},
			ServerName: mtls.ServerName("http"),
		})
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err = c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil // accepted: the server waits for a request
		}
		return err
	}
	if err := handshake(old); err != nil {
		t.Fatalf("the current certificate is refused before any revocation: %v", err)
	}
	time.Sleep(1100 * time.Millisecond) // so that the revocation comes after the certificate's issue
	if _, err := m.plane.Revoke(t.Context(), "spiffe://mesh.local/ns/shop/sa/web", "test: key leaked"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "peers refuse the revoked certificate", func() bool { return handshake(old) != nil })
	eventually(t, "web has a new certificate and reaches orders again", func() bool {
		cur, err := web.source.Load().TLSCertificate()
		if err != nil || cur.Leaf == nil || cur.Leaf.Equal(old.Leaf) {
			return false
		}
		st, _, _ := call(t, web, "orders.shop.mesh", "/")
		return st == 200
	})
}
