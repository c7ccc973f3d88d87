package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// checkOrigin makes sure the origin serves what the workloads expect.
func checkOrigin(addr string) error {
	c := &http.Client{Timeout: 5 * time.Second}
	return checkBodies(c, "http://"+addr)
}

func checkBodies(c *http.Client, base string) error {
	for _, tc := range []struct {
		path string
		size int
	}{{"/", len(tinyBody)}, {"/16k", bigSize}} {
		resp, err := c.Get(base + tc.path)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", tc.path, err)
		}
		if resp.StatusCode != 200 || len(body) != tc.size {
			return fmt.Errorf("GET %s%s: status %d, %d body bytes; want 200 and %d", base, tc.path, resp.StatusCode, len(body), tc.size)
		}
	}
	return nil
}

// checkProxy makes sure p proxies / and /16k over HTTP/1.1, HTTPS with HTTP/1.1 and HTTPS with
// HTTP/2, with TLS 1.3.
func checkProxy(p *proxy, certFile string) error {
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if err := checkBodies(plain, fmt.Sprintf("http://127.0.0.1:%d", p.httpPort)); err != nil {
		return err
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("cannot parse the benchmark certificate")
	}
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "localhost"},
			ForceAttemptHTTP2: h2,
		}
		if !h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		base := fmt.Sprintf("https://127.0.0.1:%d", p.tlsPort)
		if err := checkBodies(c, base); err != nil {
			return err
		}
		resp, err := c.Get(base + "/")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.TLS == nil || resp.TLS.Version != tls.VersionTLS13 {
			return errors.New("HTTPS did not negotiate TLS 1.3")
		}
		if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
			return fmt.Errorf("HTTPS: got HTTP/%d, want HTTP/%d", resp.ProtoMajor, want)
		}
	}
	// A TLS 1.2 client must be refused, so that every TLS workload measures TLS 1.3.
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.tlsPort),
		&tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err == nil {
		conn.Close()
		return errors.New("accepts TLS 1.2; it should be configured for TLS 1.3 only")
	}
	return nil
}
