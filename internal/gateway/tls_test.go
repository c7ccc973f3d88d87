package gateway_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testpki"
)

// tlsConfig is a config with one https listener serving cert and key, with the extra listener
// TLS lines extra, routing everything to the upstream at up.
func tlsConfig(cert, key, extra, up string) string {
	return configHead + fmt.Sprintf(`listeners:
  - name: secure
    address: "127.0.0.1:0"
    protocol: https
    tls:
      certificates: [{cert: %q, key: %q}]
%sroutes:
  - name: all
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, cert, key, extra, up)
}

// tlsGet sends one HTTP/1.1 GET on conn and returns the status.
func tlsGet(t *testing.T, conn *tls.Conn) int {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /x HTTP/1.1\r\nHost: a.example.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = resp.Body.Read(make([]byte, 64<<10))
	return resp.StatusCode
}

// replaceFile writes data to path atomically, as certificate managers do.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestCertificateReload: replacing a listener's certificate files makes new connections get the
// new certificate without a config reload, while an open connection keeps working; files that do
// not load (a key that does not match) keep the previous certificate.
func TestCertificateReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testpki.New(t, dir, "a.example.test")
	live := pki.Certs["a.example.test"]
	up := startUpstream(t, "up", upstreamOptions{})
	gw := startGateway(t, tlsConfig(live.Cert, live.Key, "", up.Addr))
	addr := listenerAddr(t, gw, "secure")

	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.Pool, ServerName: "a.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	first := old.ConnectionState().PeerCertificates[0].SerialNumber
	if s := tlsGet(t, old); s != 200 {
		t.Fatalf("status %d", s)
	}

	// A renewed certificate for the same name, issued into other files, then moved into place.
	renewed := pki.Server("renewed.a.example.test") // another serial, same CA
	certPEM, err := os.ReadFile(renewed.Cert)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(renewed.Key)
	if err != nil {
		t.Fatal(err)
	}
	// The renewed certificate names renewed.a.example.test; clients below ask for that name.
	replaceFile(t, live.Key, keyPEM)
	replaceFile(t, live.Cert, certPEM)
	waitFor(t, 10*time.Second, "new connections never got the renewed certificate", func() bool {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.Pool, ServerName: "renewed.a.example.test"})
		if err != nil {
			return false
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(renewed.Leaf.SerialNumber) == 0
	})
	if s := tlsGet(t, old); s != 200 {
		t.Fatalf("the connection opened before the renewal: status %d", s)
	}
	if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(first) != 0 {
		t.Fatalf("the open connection's certificate changed")
	}

	// A key that does not match the certificate: the renewed certificate stays.
	other := pki.Server("other.example.test")
	otherKey, err := os.ReadFile(other.Key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, live.Key, otherKey)
	time.Sleep(1500 * time.Millisecond) // past the check interval, so the bad files are looked at
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pki.Pool, ServerName: "renewed.a.example.test"})
	if err != nil {
		t.Fatalf("after a bad key was written: %v", err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(renewed.Leaf.SerialNumber) != 0 {
		t.Fatalf("after a bad key was written the served certificate changed")
	}
	if s := tlsGet(t, c); s != 200 {
		t.Fatalf("status %d after a bad key was written", s)
	}
}

// TestClientCertificates: with a client CA and clientAuth "require", a client without a
// certificate, or with one from another CA, fails the handshake; one with a certificate from
// the CA is served. With "optional", clients without a certificate are served too.
func TestClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pki := testpki.New(t, dir, "a.example.test")
	client := pki.Client("billing", "Example")
	stranger := testpki.New(t, t.TempDir()).Client("mallory", "Elsewhere")
	up := startUpstream(t, "up", upstreamOptions{})
	srv := pki.Certs["a.example.test"]
	for _, mode := range []string{"require", "optional"} {
		t.Run(mode, func(t *testing.T) {
			gw := startGateway(t, tlsConfig(srv.Cert, srv.Key, fmt.Sprintf("      clientCA: %q\n      clientAuth: %s\n", pki.CAFile, mode), up.Addr))
			addr := listenerAddr(t, gw, "secure")
			dial := func(certs ...tls.Certificate) (*tls.Conn, error) {
				cfg := &tls.Config{RootCAs: pki.Pool, ServerName: "a.example.test"}
				// Send the certificate even when the server's list of acceptable CAs does not
				// name its issuer, as an attacker would.
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					if len(certs) == 0 {
						return &tls.Certificate{}, nil
					}
					return &certs[0], nil
				}
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					return nil, err
				}
				// With TLS 1.3 the server's verdict on the client certificate arrives after the
				// handshake: a request shows it.
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := fmt.Fprintf(c, "GET /x HTTP/1.1\r\nHost: a.example.test\r\n\r\n"); err != nil {
					c.Close()
					return nil, err
				}
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					c.Close()
					return nil, err
				}
				resp.Body.Close()
				return c, nil
			}
			if c, err := dial(client.Pair); err != nil {
				t.Fatalf("a client with a certificate from the CA: %v", err)
			} else {
				c.Close()
			}
			if c, err := dial(stranger.Pair); err == nil {
				c.Close()
				t.Fatal("a client with a certificate from another CA was served")
			}
			c, err := dial()
			switch {
			case mode == "require" && err == nil:
				c.Close()
				t.Fatal("a client without a certificate was served although one is required")
			case mode == "optional" && err != nil:
				t.Fatalf("a client without a certificate, which is optional: %v", err)
			case err == nil:
				c.Close()
			}
		})
	}
}
