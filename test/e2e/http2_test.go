package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"testing"

	"github.com/meshgate/meshgate/internal/testpki"
)

// TestHTTP2 checks HTTP/2 downstream: prior knowledge on an http and an h2c listener, and ALPN and
// SNI certificate selection on a TLS listener with two certificates.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	requireTool(t, "curl")
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("upstream saw " + r.Method + " " + r.URL.Path + " host " + r.Host))
	}))
	pki := testpki.New(t, t.TempDir(), "a.example.test", "b.example.test")
	admin, plain, h2c, tlsAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	a, b := pki.Certs["a.example.test"], pki.Certs["b.example.test"]
	startGateway(t, admin, fill(`
version: 1
admin: {address: "{{ADMIN}}"}
accessLog: {path: stdout}
listeners:
  - {name: plain, address: "{{PLAIN}}", protocol: http}
  - {name: h2c, address: "{{H2C}}", protocol: h2c}
  - name: tls
    address: "{{TLS}}"
    protocol: https
    tls:
      certificates:
        - {cert: "{{ACERT}}", key: "{{AKEY}}"}
        - {cert: "{{BCERT}}", key: "{{BKEY}}"}
routes:
  - name: hello
    match: [{path: {exact: /hello}}]
    filters:
      - respond: {status: 200, body: "hello"}
  - name: app
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PLAIN", plain, "H2C", h2c, "TLS", tlsAddr, "ACERT", a.Cert, "AKEY", a.Key,
		"BCERT", b.Cert, "BKEY", b.Key, "UP", up))

	_, tlsPort, _ := net.SplitHostPort(tlsAddr)

	cases := []struct {
		desc    string
		args    []string
		version string
	}{
		{"prior knowledge on an http listener", []string{"--http2-prior-knowledge", "http://" + plain}, "2"},
		{"prior knowledge on an h2c listener", []string{"--http2-prior-knowledge", "http://" + h2c}, "2"},
		{"HTTP/1.1 on an http listener", []string{"--http1.1", "http://" + plain}, "1.1"},
		{"ALPN h2 with SNI a", []string{"--resolve", "a.example.test:" + tlsPort + ":127.0.0.1", "--cacert", pki.CAFile, "https://a.example.test:" + tlsPort}, "2"},
		{"ALPN h2 with SNI b", []string{"--resolve", "b.example.test:" + tlsPort + ":127.0.0.1", "--cacert", pki.CAFile, "https://b.example.test:" + tlsPort}, "2"},
		{"HTTP/1.1 over TLS", []string{"--http1.1", "--resolve", "a.example.test:" + tlsPort + ":127.0.0.1", "--cacert", pki.CAFile, "https://a.example.test:" + tlsPort}, "1.1"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			base := tc.args[len(tc.args)-1]
			opts := tc.args[:len(tc.args)-1]
			r := runCurl(t, append(append([]string{}, opts...), base+"/hello")...)
			if r.Status != 200 || r.Body != "hello" || r.Version != tc.version {
				t.Fatalf("fixed response: got %d %q over HTTP/%s, want 200 \"hello\" over HTTP/%s", r.Status, r.Body, r.Version, tc.version)
			}
			r = runCurl(t, append(append([]string{}, opts...), base+"/proxied/path")...)
			if r.Status != 200 || r.Version != tc.version {
				t.Fatalf("proxied: got %d %q over HTTP/%s, want 200 over HTTP/%s", r.Status, r.Body, r.Version, tc.version)
			}
			if want := "upstream saw GET /proxied/path host "; len(r.Body) < len(want) || r.Body[:len(want)] != want {
				t.Fatalf("proxied body %q, want prefix %q", r.Body, want)
			}
		})
	}

	t.Run("SNI chooses the certificate", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			serverName string
			want       *x509.Certificate
			verify     bool
		}{
			{"a.example.test", a.Leaf, true},
			{"b.example.test", b.Leaf, true},
			{"unknown.example.test", a.Leaf, false},
			{"", a.Leaf, false}, // no SNI at all
		} {
			cfg := &tls.Config{ServerName: tc.serverName, RootCAs: pki.Pool, NextProtos: []string{"h2", "http/1.1"}}
			if !tc.verify {
				cfg.InsecureSkipVerify = true
			}
			d := &net.Dialer{Timeout: requestTimeout}
			conn, err := tls.DialWithDialer(d, "tcp", tlsAddr, cfg)
			if err != nil {
				t.Errorf("SNI %q: handshake: %v", tc.serverName, err)
				continue
			}
			st := conn.ConnectionState()
			_ = conn.Close()
			if got := st.PeerCertificates[0]; !got.Equal(tc.want) {
				t.Errorf("SNI %q: got the certificate for %v, want the one for %v", tc.serverName, got.DNSNames, tc.want.DNSNames)
			}
			if st.NegotiatedProtocol != "h2" {
				t.Errorf("SNI %q: ALPN chose %q, want h2", tc.serverName, st.NegotiatedProtocol)
			}
		}
	})
}
