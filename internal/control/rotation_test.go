package control

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	controlv1 "github.com/meshgate/meshgate/api/controlv1"
	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/control/push"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/mesh/agent"
	"github.com/meshgate/meshgate/internal/observe/metrics"
)

// TestRootRotationEndToEnd rotates the mesh's root CA under a gateway that takes its config from
// the control plane and serves traffic meanwhile, with certificates that live seconds: the
// gateway renews through the whole rotation, ends with a certificate from the new root and a
// bundle holding only the new root, keeps receiving config, and no request fails.
func TestRootRotationEndToEnd(t *testing.T) {
	p := startPlane(t, func(o *Options) {
		o.CertTTL, o.MinCertTTL, o.MaxCertTTL = 4*time.Second, time.Second, 4*time.Second
		o.RootPropagation = time.Second
	})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer backend.Close()
	doc := func(extra string) string {
		return fmt.Sprintf(`version: 1
listeners: [{name: web, address: "127.0.0.1:0"}]
routes: [{name: all, backends: [{service: backend}]}%s]
services: [{name: backend, endpoints: [{address: %q}]}]
`, extra, backend.Listener.Addr().String())
	}
	if code, body := p.admin(t, "PUT", "/v1/config", doc("")); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}

	gw := gateway.New(testLogger(t), metrics.New())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	}()
	var applied atomic.Int64
	apply := func(s *push.Snapshot) error {
		cfg, err := s.Config()
		if err != nil {
			return err
		}
		cfg.Admin.Address, cfg.AccessLog.Path = "off", "off"
		config.ApplyDefaults(cfg)
		if err := config.Validate(cfg); err != nil {
			return err
		}
		if _, err := gw.Apply(cfg); err != nil {
			return err
		}
		applied.Add(1)
		return nil
	}
	dir := t.TempDir()
	ag, err := agent.New(agent.Options{
		ControlAddress: p.GRPCAddr().String(), ControlCA: filepath.Join(p.dir, BundleFile), JoinToken: p.token,
		DataDir: dir, Apply: apply, CertTTL: 4 * time.Second, Log: testLogger(t),
		Node: &controlv1.Node{Id: "gw-1", Role: "gateway", Service: "gateway", Namespace: "default"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); ag.Wait() }()
	if err := ag.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ag.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no config applied")
	}
	url := "http://" + gw.Addr("web").String() + "/"

	// Traffic for the whole rotation, bounded in time and count.
	var sent, failed atomic.Int64
	stopLoad := make(chan struct{})
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		client := &http.Client{Timeout: 5 * time.Second}
		deadline := time.Now().Add(60 * time.Second)
		for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
			select {
			case <-stopLoad:
				return
			case <-time.After(5 * time.Millisecond):
			}
			sent.Add(1)
			resp, err := client.Get(url)
			if err != nil {
				failed.Add(1)
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	}()

	oldRoots := p.ca().Bundle()
	if len(oldRoots) != 1 {
		t.Fatalf("bundle has %d roots before the rotation", len(oldRoots))
	}
	if err := p.RotateRoot(context.Background()); err != nil {
		t.Fatal(err)
	}
	bundleFile := filepath.Join(dir, "bundle.pem")
	rootsAtProxy := func() []*x509.Certificate {
		b, err := os.ReadFile(bundleFile)
		if err != nil {
			return nil
		}
		return parsePEMCerts(b)
	}
	eventually(t, 20*time.Second, "the proxy to hold both roots", func() bool { return len(rootsAtProxy()) == 2 })
	var newRoot *x509.Certificate
	for _, r := range p.ca().Bundle() {
		if !r.Equal(oldRoots[0]) {
			newRoot = r
		}
	}
	if newRoot == nil {
		t.Fatal("no new root in the control plane's bundle")
	}
	onlyNew := x509.NewCertPool()
	onlyNew.AddCert(newRoot)
	eventually(t, 30*time.Second, "a proxy certificate from the new root", func() bool {
		svid, err := ag.Source().GetX509SVID()
		if err != nil {
			return false
		}
		inter := x509.NewCertPool()
		for _, c := range svid.Certificates[1:] {
			inter.AddCert(c)
		}
		_, err = svid.Certificates[0].Verify(x509.VerifyOptions{Roots: onlyNew, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	})
	eventually(t, 30*time.Second, "the old root to leave the proxy's bundle", func() bool {
		rs := rootsAtProxy()
		return len(rs) == 1 && rs[0].Equal(newRoot)
	})
	// The stream still works after the rotation: a config change arrives.
	before := applied.Load()
	if code, body := p.admin(t, "PUT", "/v1/config", doc(`, {name: extra, match: [{path: {prefix: /extra}}], backends: [{service: backend}]}`)); code != 200 {
		t.Fatalf("apply: %d %s", code, body)
	}
	eventually(t, 10*time.Second, "a config change after the rotation", func() bool { return applied.Load() > before })
	close(stopLoad)
	<-loadDone
	if sent.Load() < 100 || failed.Load() != 0 {
		t.Errorf("%d requests during the rotation, %d failed", sent.Load(), failed.Load())
	}
	t.Logf("%d requests during the rotation, %d failed; %d configs applied", sent.Load(), failed.Load(), applied.Load())
}

func parsePEMCerts(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}
