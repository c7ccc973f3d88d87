package store

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testetcd"
	"github.com/meshgate/meshgate/internal/testpki"
)

func TestEtcdTLS(t *testing.T) {
	pki := testpki.New(t, t.TempDir(), "localhost")
	srvCert := pki.Certs["localhost"]
	client := pki.Client("control", "meshgate")
	srv := testetcd.StartWith(t, testetcd.Options{CertFile: srvCert.Cert, KeyFile: srvCert.Key, TrustedCAFile: pki.CAFile})
	ctx := testCtx(t)
	// The certificate names localhost (no IP address), and the client checks the endpoint's host.
	endpoints := []string{strings.Replace(srv.Endpoints[0], "127.0.0.1", "localhost", 1)}

	for _, tc := range []struct {
		desc string
		tls  *tls.Config
		ok   bool
	}{
		{"client certificate", &tls.Config{RootCAs: pki.Pool, ServerName: "localhost", Certificates: []tls.Certificate{client.Pair}}, true},
		{"no client certificate", &tls.Config{RootCAs: pki.Pool, ServerName: "localhost"}, false},
		{"untrusted server", &tls.Config{ServerName: "localhost", Certificates: []tls.Certificate{client.Pair}}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			short, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			e, err := OpenEtcd(short, EtcdOptions{Endpoints: endpoints, TLS: tc.tls,
				DialTimeout: time.Second, RequestTimeout: time.Second})
			if !tc.ok {
				if err == nil {
					_ = e.Close()
					t.Fatal("OpenEtcd succeeded")
				}
				if !errors.Is(err, ErrUnavailable) {
					t.Logf("refused with %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			mustApply(t, e, 0, "a: 1\n")
			if cur, err := e.Current(ctx); err != nil || cur.Version != 1 {
				t.Fatalf("Current = %+v, %v", cur, err)
			}
		})
	}
}
