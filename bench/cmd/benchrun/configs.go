package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Loopback ports. Each proxy has a cleartext HTTP/1.1 port and a TLS port (TLS 1.3 only, ALPN h2
// and http/1.1).
const (
	originPort       = 18100
	meshgateHTTPPort = 18110
	meshgateTLSPort  = 18111
	meshgateAdmin    = 19110
	nginxHTTPPort    = 18120
	nginxTLSPort     = 18121
	haproxyHTTPPort  = 18130
	haproxyTLSPort   = 18131
)

// upstreamIdle is the idle keep-alive pool to the origin that every proxy is given, large enough
// for the most concurrent requests any workload has in flight (h2-multiplexed: 16 × 32).
const upstreamIdle = 512

// tinyBody and bigSize are what the origin serves on / and /16k.
const (
	tinyBody = "ok\n"
	bigSize  = 16 << 10
)

// setup holds the generated files.
type setup struct {
	out      string // output directory (absolute)
	certPEM  string
	keyPEM   string
	comboPEM string // cert then key, for HAProxy
	www      string // document root of the origin
}

// prepareFiles creates the output directories, the origin's content and (once) the TLS
// certificate.
func prepareFiles(out string) (*setup, error) {
	s := &setup{out: out}
	for _, d := range []string{"tls", "www", "tmp", "logs", "conf"} {
		if err := os.MkdirAll(filepath.Join(out, d), 0o755); err != nil {
			return nil, err
		}
	}
	s.www = filepath.Join(out, "www")
	big := bytes.Repeat([]byte("0123456789abcdef"), bigSize/16)
	if err := os.WriteFile(filepath.Join(s.www, "16k"), big, 0o644); err != nil {
		return nil, err
	}
	s.certPEM = filepath.Join(out, "tls", "cert.pem")
	s.keyPEM = filepath.Join(out, "tls", "key.pem")
	s.comboPEM = filepath.Join(out, "tls", "haproxy.pem")
	if !exists(s.certPEM) || !exists(s.keyPEM) {
		// One self-signed ECDSA P-256 certificate, shared by all three proxies.
		cmd := exec.Command("openssl", "req", "-x509", "-newkey", "ec",
			"-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
			"-keyout", s.keyPEM, "-out", s.certPEM, "-days", "3650",
			"-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("openssl: %v: %s", err, b)
		}
	}
	cert, err := os.ReadFile(s.certPEM)
	if err != nil {
		return nil, err
	}
	key, err := os.ReadFile(s.keyPEM)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.comboPEM, append(append(cert, '\n'), key...), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// nginxVersion parses "nginx version: nginx/1.22.1" into comparable parts.
func nginxVersion(v string) [3]int {
	var out [3]int
	m := regexp.MustCompile(`nginx/(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(v)
	if m == nil {
		return out
	}
	for i := range out {
		out[i], _ = strconv.Atoi(m[i+1])
	}
	return out
}

// nginxHTTP2OnDirective reports whether this nginx wants "http2 on;" (1.25.1 and later) rather
// than the older "listen ... http2" parameter.
func nginxHTTP2OnDirective(v [3]int) bool {
	return v[0] > 1 || (v[0] == 1 && (v[1] > 25 || (v[1] == 25 && v[2] >= 1)))
}

// nginxCommon is shared by the origin and the proxy: one worker, no daemon, every file under the
// output directory, no access log.
const nginxCommon = `{{if .Root}}user root;
{{end}}worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
master_process on;
pid {{.Out}}/tmp/{{.Name}}.pid;
error_log {{.Out}}/logs/{{.Name}}-error.log warn;
events {
    worker_connections 8000;
    multi_accept off;
}
`

const nginxTempPaths = `    client_body_temp_path {{.Out}}/tmp/{{.Name}}-body;
    proxy_temp_path {{.Out}}/tmp/{{.Name}}-proxy;
    fastcgi_temp_path {{.Out}}/tmp/{{.Name}}-fastcgi;
    uwsgi_temp_path {{.Out}}/tmp/{{.Name}}-uwsgi;
    scgi_temp_path {{.Out}}/tmp/{{.Name}}-scgi;
`

var originConf = template.Must(template.New("origin").Parse(nginxCommon + `http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
` + nginxTempPaths + `    server {
        listen 127.0.0.1:{{.Port}} backlog=4096;
        location = / {
            default_type text/plain;
            return 200 "ok\n";
        }
        location = /16k {
            root {{.WWW}};
            default_type application/octet-stream;
        }
    }
}
`))

var nginxProxyConf = template.Must(template.New("nginx").Parse(nginxCommon + `http {
    access_log off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
` + nginxTempPaths + `    upstream origin {
        server 127.0.0.1:{{.OriginPort}};
        keepalive {{.Idle}};
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:{{.Port}} backlog=4096;
        listen 127.0.0.1:{{.TLSPort}} ssl{{if not .HTTP2On}} http2{{end}} backlog=4096;
{{if .HTTP2On}}        http2 on;
{{end}}        ssl_certificate {{.Cert}};
        ssl_certificate_key {{.Key}};
        ssl_protocols TLSv1.3;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`))

var haproxyConf = template.Must(template.New("haproxy").Parse(`global
    nbthread 1
    maxconn 8000
    ssl-default-bind-options ssl-min-ver TLSv1.3
    # no "log" line: no access log

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    http-reuse always
    maxconn 8000

frontend public
    bind 127.0.0.1:{{.Port}} backlog 4096
    bind 127.0.0.1:{{.TLSPort}} ssl crt {{.Combo}} alpn h2,http/1.1 backlog 4096
    default_backend origin

backend origin
    server origin 127.0.0.1:{{.OriginPort}} pool-max-conn {{.Idle}}
`))

var meshgateConf = template.Must(template.New("meshgate").Parse(`version: 1
admin: {address: 127.0.0.1:{{.AdminPort}}}
accessLog: {path: "off"}
listeners:
  - {name: public, address: 127.0.0.1:{{.Port}}, protocol: http}
  - name: public-tls
    address: 127.0.0.1:{{.TLSPort}}
    protocol: https
    tls:
      minVersion: "1.3"
      certificates: [{cert: {{.Cert}}, key: {{.Key}}}]
routes:
  - name: all
    backends: [{service: origin}]
services:
  - name: origin
    endpoints: [{address: 127.0.0.1:{{.OriginPort}}}]
    pool: {maxIdlePerEndpoint: {{.Idle}}}
`))

// confData is what the templates see.
type confData struct {
	Name, Out, WWW, Cert, Key, Combo string
	Port, TLSPort, OriginPort, Idle  int
	AdminPort                        int
	Root, HTTP2On                    bool
}

func writeConf(t *template.Template, path string, d confData) error {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// firstLine returns the first non-empty line of s, trimmed.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
