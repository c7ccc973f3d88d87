package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Workload names.
const (
	wTiny    = "h1-keepalive-tiny"
	w16k     = "h1-keepalive-16k"
	wNewConn = "h1-new-conn"
	wLatency = "latency-fixed-rate"
	wTLS     = "https-tls13-keepalive"
	wH2      = "h2-multiplexed"
	wMemory  = "memory"
)

// workload describes one measurement.
type workload struct {
	name  string
	tool  string // "wrk", "h2load" or "loadgen"
	path  string // request path
	tls   bool
	close bool // a new connection per request
	desc  string
}

// workloads are run in this order.
var workloads = []workload{
	{name: wTiny, tool: "wrk", path: "/", desc: "HTTP/1.1 keep-alive, 64 connections, tiny response (3 bytes)"},
	{name: w16k, tool: "wrk", path: "/16k", desc: "HTTP/1.1 keep-alive, 64 connections, 16 KiB response"},
	{name: wNewConn, tool: "wrk", path: "/", close: true, desc: "HTTP/1.1, a new TCP connection per request (Connection: close), 64 concurrent"},
	{name: wLatency, tool: "loadgen", path: "/", desc: "open-loop fixed request rate over keep-alive connections; latency from each request's scheduled time"},
	{name: wTLS, tool: "wrk", path: "/", tls: true, desc: "HTTPS (TLS 1.3, ECDSA P-256) keep-alive, 64 connections, tiny response"},
	{name: wH2, tool: "h2load", path: "/", tls: true, desc: "HTTP/2 over TLS 1.3, 16 connections × 32 concurrent streams, tiny response"},
	{name: wMemory, desc: "RSS at idle after start, after warm-up, and peak under h1-keepalive-tiny"},
}

func workloadByName(n string) (workload, bool) {
	for _, w := range workloads {
		if w.name == n {
			return w, true
		}
	}
	return workload{}, false
}

// toolResult is what a load generator's output says.
type toolResult struct {
	Requests  int64   // completed requests (any status)
	DurationS float64 // measured duration the tool reports
	RPS       float64
	// Errors, by kind; any non-zero entry fails the run.
	Errors map[string]int64
	// Latency, for the open-loop generator.
	P50us, P99us, P999us, MaxUs float64
	// TLS details h2load reports.
	TLSProtocol, Cipher, ALPN string
	// FirstError is the open-loop generator's first error message, if any.
	FirstError string
}

func (t *toolResult) errorCount() int64 {
	var n int64
	for _, v := range t.Errors {
		n += v
	}
	return n
}

func (t *toolResult) errorSummary() string {
	var parts []string
	for _, k := range sortedKeys(t.Errors) {
		if t.Errors[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, t.Errors[k]))
		}
	}
	return strings.Join(parts, ", ")
}

var (
	wrkRequests = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)`)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// parseWrk reads wrk's summary.
func parseWrk(out string) (*toolResult, error) {
	m := wrkRequests.FindStringSubmatch(out)
	r := wrkRPS.FindStringSubmatch(out)
	if m == nil || r == nil {
		return nil, fmt.Errorf("unrecognised wrk output: %q", truncate(out, 400))
	}
	res := &toolResult{Errors: map[string]int64{}}
	res.Requests, _ = strconv.ParseInt(m[1], 10, 64)
	d, _ := strconv.ParseFloat(m[2], 64)
	res.DurationS = d * map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}[m[3]]
	res.RPS, _ = strconv.ParseFloat(r[1], 64)
	if s := wrkSocket.FindStringSubmatch(out); s != nil {
		for i, k := range []string{"connect", "read", "write", "timeout"} {
			res.Errors[k], _ = strconv.ParseInt(s[i+1], 10, 64)
		}
	}
	if s := wrkNon2xx.FindStringSubmatch(out); s != nil {
		res.Errors["non-2xx/3xx"], _ = strconv.ParseInt(s[1], 10, 64)
	}
	return res, nil
}

var (
	h2Finished = regexp.MustCompile(`finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s`)
	h2Requests = regexp.MustCompile(`requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	h2TLS      = regexp.MustCompile(`(?m)^TLS Protocol: (\S+)`)
	h2Cipher   = regexp.MustCompile(`(?m)^Cipher: (\S+)`)
	h2ALPN     = regexp.MustCompile(`(?m)^Application protocol: (\S+)`)
)

// parseH2load reads h2load's summary.
func parseH2load(out string) (*toolResult, error) {
	f := h2Finished.FindStringSubmatch(out)
	q := h2Requests.FindStringSubmatch(out)
	s := h2Status.FindStringSubmatch(out)
	if f == nil || q == nil || s == nil {
		return nil, fmt.Errorf("unrecognised h2load output: %q", truncate(out, 400))
	}
	atoi := func(x string) int64 { v, _ := strconv.ParseInt(x, 10, 64); return v }
	res := &toolResult{Errors: map[string]int64{}}
	d, _ := strconv.ParseFloat(f[1], 64)
	res.DurationS = d * map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1}[f[2]]
	res.RPS, _ = strconv.ParseFloat(f[3], 64)
	res.Requests = atoi(q[3])
	res.Errors["failed"] = atoi(q[5])
	res.Errors["errored"] = atoi(q[6])
	res.Errors["timeout"] = atoi(q[7])
	res.Errors["4xx"] = atoi(s[3])
	res.Errors["5xx"] = atoi(s[4])
	if m := h2TLS.FindStringSubmatch(out); m != nil {
		res.TLSProtocol = m[1]
	}
	if m := h2Cipher.FindStringSubmatch(out); m != nil {
		res.Cipher = m[1]
	}
	if m := h2ALPN.FindStringSubmatch(out); m != nil {
		res.ALPN = m[1]
	}
	if res.ALPN != "" && res.ALPN != "h2" {
		res.Errors["not-h2"] = 1
	}
	return res, nil
}

// loadgenOut mirrors the JSON the open-loop generator prints.
type loadgenOut struct {
	Scheduled    int64   `json:"scheduled"`
	Completed    int64   `json:"completed"`
	Non2xx       int64   `json:"non_2xx"`
	Errors       int64   `json:"errors"`
	DurationS    float64 `json:"duration_s"`
	AchievedRate float64 `json:"achieved_rate"`
	P50us        float64 `json:"p50_us"`
	P99us        float64 `json:"p99_us"`
	P999us       float64 `json:"p999_us"`
	MaxUs        float64 `json:"max_us"`
	FirstError   string  `json:"first_error"`
}

func parseLoadgen(out string, target float64) (*toolResult, error) {
	var o loadgenOut
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		return nil, fmt.Errorf("unrecognised loadgen output: %v: %q", err, truncate(out, 400))
	}
	res := &toolResult{
		Requests: o.Completed, DurationS: o.DurationS, RPS: o.AchievedRate,
		P50us: o.P50us, P99us: o.P99us, P999us: o.P999us, MaxUs: o.MaxUs,
		Errors:     map[string]int64{"failed": o.Errors, "non-2xx": o.Non2xx},
		FirstError: o.FirstError,
	}
	// The rate is "sustained" when at least 99% of the scheduled requests completed in time.
	if target > 0 && float64(o.Completed) < 0.99*float64(o.Scheduled) {
		res.Errors["rate-not-sustained"] = 1
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// fmtNum formats a value for a table: NaN as "-", otherwise with precision fitting its size.
func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case math.Abs(v) >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + "×"
}
