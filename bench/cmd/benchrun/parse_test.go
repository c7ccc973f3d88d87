package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

const wrkSample = `Running 5s test @ http://127.0.0.1:18120/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   548.07us  120.00us   3.01ms   80.00%
    Req/Sec    58.12k     2.51k   62.01k    80.00%
  289203 requests in 5.00s, 41.36MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 12
Requests/sec:  57840.60
Transfer/sec:      8.27MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkSample)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 289203 || r.DurationS != 5 || r.RPS != 57840.60 {
		t.Fatalf("got %+v", r)
	}
	if r.Errors["read"] != 2 || r.Errors["timeout"] != 1 || r.Errors["non-2xx/3xx"] != 12 || r.errorCount() != 15 {
		t.Fatalf("errors %v", r.Errors)
	}
	if got := r.errorSummary(); got != "non-2xx/3xx 12, read 2, timeout 1" {
		t.Fatalf("summary %q", got)
	}
	clean := strings.Replace(strings.Replace(wrkSample, "  Socket errors: connect 0, read 2, write 0, timeout 1\n", "", 1), "  Non-2xx or 3xx responses: 12\n", "", 1)
	r, err = parseWrk(clean)
	if err != nil || r.errorCount() != 0 {
		t.Fatalf("clean output: %v %v", r, err)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused"); err == nil {
		t.Fatal("garbage parsed")
	}
}

const h2Sample = `starting benchmark...
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2

finished in 1.06s, 4552.00 req/s, 311.94KB/s
requests: 4552 total, 5064 started, 4552 done, 4550 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 4550 2xx, 0 3xx, 0 4xx, 1 5xx
traffic: 311.94KB (319424) total, 217.82KB (223048) headers (space savings 50.00%), 13.34KB (13656) data
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2Sample)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 4552 || r.RPS != 4552 || math.Abs(r.DurationS-1.06) > 1e-9 {
		t.Fatalf("got %+v", r)
	}
	if r.Errors["failed"] != 2 || r.Errors["5xx"] != 1 || r.TLSProtocol != "TLSv1.3" || r.ALPN != "h2" || r.Cipher != "TLS_AES_128_GCM_SHA256" {
		t.Fatalf("got %+v", r)
	}
	r, _ = parseH2load(strings.Replace(h2Sample, "Application protocol: h2", "Application protocol: http/1.1", 1))
	if r.Errors["not-h2"] != 1 {
		t.Fatal("HTTP/1.1 fallback not flagged")
	}
}

func TestParseLoadgen(t *testing.T) {
	out, _ := json.Marshal(map[string]any{"scheduled": 1000, "completed": 985, "errors": 15, "non_2xx": 0,
		"duration_s": 1, "achieved_rate": 985, "p50_us": 80, "p99_us": 200, "p999_us": 900, "first_error": "EOF"})
	r, err := parseLoadgen(string(out), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if r.P99us != 200 || r.Errors["failed"] != 15 || r.Errors["rate-not-sustained"] != 1 || r.FirstError != "EOF" {
		t.Fatalf("got %+v", r)
	}
}

func TestNginxVersion(t *testing.T) {
	if v := nginxVersion("nginx version: nginx/1.22.1"); v != [3]int{1, 22, 1} || nginxHTTP2OnDirective(v) {
		t.Fatalf("1.22.1: %v", v)
	}
	if !nginxHTTP2OnDirective(nginxVersion("nginx version: nginx/1.25.1")) || nginxHTTP2OnDirective(nginxVersion("nginx/1.25.0")) {
		t.Fatal("1.25.x boundary")
	}
}

func TestJSONNaN(t *testing.T) {
	b, err := json.Marshal(struct{ A, B jf }{jf(math.NaN()), 1.5})
	if err != nil || string(b) != `{"A":null,"B":1.5}` {
		t.Fatalf("%s %v", b, err)
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--smoke", "--only", "h2-multiplexed, h1-keepalive-tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if o.rounds != 1 || o.duration != 1 || o.warmup != 0 || o.nice != 0 {
		t.Fatalf("smoke defaults: %+v", o)
	}
	if len(o.selected) != 2 || o.selected[0].name != wTiny || o.selected[1].name != wH2 {
		t.Fatalf("selected %v", o.selected)
	}
	o, err = parseFlags([]string{"--smoke", "--rounds", "3", "--duration", "2"})
	if err != nil || o.rounds != 3 || o.duration != 2 || len(o.selected) != len(workloads) {
		t.Fatalf("explicit flags: %+v %v", o, err)
	}
	for _, bad := range [][]string{{"--only", "nope"}, {"--rounds", "0"}, {"--proxies", "envoy"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
