// Command loadgen is an open-loop HTTP/1.1 load generator for latency measurements at a fixed
// request rate, free of coordinated omission.
//
// Requests are scheduled at fixed intervals (start + i/rate) whatever happens to earlier ones.
// Each scheduled request waits in a queue until one of the keep-alive connections is free, and
// its latency is measured from its scheduled time, not from when it was written, so a stalled
// server is charged for every request that should have been sent during the stall. Latencies go
// into an HDR-style histogram (bench/internal/stats) and the result is printed as one JSON object.
//
// Only plain http:// URLs on loopback are accepted. The run is bounded: after the duration no
// request is scheduled, and requests still outstanding after -timeout are counted as errors.
//
//	loadgen -url http://127.0.0.1:18110/ -rate 5000 -c 32 -d 10s
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgate/meshgate/bench/internal/stats"
)

// Result is what loadgen prints: one JSON object on standard output.
type Result struct {
	URL         string  `json:"url"`
	TargetRate  float64 `json:"target_rate"`
	Connections int     `json:"connections"`
	DurationS   float64 `json:"duration_s"`
	// Scheduled is the number of requests scheduled (rate × duration).
	Scheduled int64 `json:"scheduled"`
	// Completed counts responses read in full, whatever their status.
	Completed int64 `json:"completed"`
	// Non2xx counts completed responses whose status was not 2xx.
	Non2xx int64 `json:"non_2xx"`
	// Errors counts requests that failed (connection, parse or write errors) or were still
	// outstanding when the run's deadline passed.
	Errors int64 `json:"errors"`
	// Reconnects counts connections opened after the initial ones.
	Reconnects int64 `json:"reconnects"`
	// AchievedRate is completed responses per second of scheduled duration.
	AchievedRate float64 `json:"achieved_rate"`
	// Latencies in microseconds, measured from each request's scheduled send time.
	P50us   float64 `json:"p50_us"`
	P90us   float64 `json:"p90_us"`
	P99us   float64 `json:"p99_us"`
	P999us  float64 `json:"p999_us"`
	MaxUs   float64 `json:"max_us"`
	MeanUs  float64 `json:"mean_us"`
	FirstEr string  `json:"first_error,omitempty"`
}

func main() {
	rawURL := flag.String("url", "", "target URL (http://127.0.0.1:PORT/PATH)")
	rate := flag.Float64("rate", 5000, "requests per second to schedule")
	conns := flag.Int("c", 32, "keep-alive connections")
	dur := flag.Duration("d", 10*time.Second, "how long to schedule requests for")
	timeout := flag.Duration("timeout", 2*time.Second, "how long to wait for outstanding requests after the last is scheduled")
	flag.Parse()
	res, err := run(*rawURL, *rate, *conns, *dur, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(res)
	if res.Errors > 0 || res.Non2xx > 0 {
		os.Exit(1)
	}
}

// target is the parsed request target.
type target struct {
	addr string // host:port to dial
	req  []byte // the request bytes, sent as is for every request
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, err
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("only http:// URLs are supported, got %q", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return target{}, fmt.Errorf("only loopback targets are allowed, got %q", host)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	path := u.RequestURI()
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, u.Host)
	return target{addr: net.JoinHostPort(host, port), req: []byte(req)}, nil
}

// run schedules the requests and collects the result.
func run(rawURL string, rate float64, conns int, dur, timeout time.Duration) (*Result, error) {
	t, err := parseTarget(rawURL)
	if err != nil {
		return nil, err
	}
	if rate <= 0 || conns <= 0 || dur <= 0 {
		return nil, errors.New("rate, connections and duration must be positive")
	}
	total := int64(rate * dur.Seconds())
	if total < 1 || total > 50_000_000 {
		return nil, fmt.Errorf("rate × duration = %d requests: out of range", total)
	}
	interval := time.Duration(float64(time.Second) / rate)

	// Open every connection before the clock starts.
	workers := make([]*worker, conns)
	for i := range workers {
		c, err := net.DialTimeout("tcp", t.addr, 2*time.Second)
		if err != nil {
			for _, w := range workers[:i] {
				w.conn.Close()
			}
			return nil, fmt.Errorf("connect: %w", err)
		}
		workers[i] = newWorker(t, c)
	}

	queue := make(chan time.Time, total)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.loop(queue)
		}()
	}

	start := time.Now()
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		queue <- due
	}
	close(queue)

	// Wait for the queue to drain, bounded by the timeout after the last scheduled request.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	deadline := start.Add(dur + timeout)
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		for _, w := range workers {
			w.stop.Store(true)
			w.mu.Lock()
			_ = w.conn.SetDeadline(time.Now())
			w.mu.Unlock()
		}
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			// A worker is stuck outside I/O: report what is known.
		}
	}

	h := stats.NewHistogram()
	res := &Result{URL: rawURL, TargetRate: rate, Connections: conns, DurationS: dur.Seconds(), Scheduled: total}
	for _, w := range workers {
		w.mu.Lock()
		h.Merge(w.hist)
		res.Completed += w.completed
		res.Non2xx += w.non2xx
		res.Errors += w.errs
		res.Reconnects += w.reconnects
		if res.FirstEr == "" && w.firstErr != "" {
			res.FirstEr = w.firstErr
		}
		w.conn.Close()
		w.mu.Unlock()
	}
	// Requests never taken from the queue, or lost in a stuck worker, are errors too.
	if lost := total - res.Completed - res.Errors; lost > 0 {
		res.Errors += lost
		if res.FirstEr == "" {
			res.FirstEr = fmt.Sprintf("%d requests still outstanding at the deadline", lost)
		}
	}
	res.AchievedRate = float64(res.Completed) / dur.Seconds()
	us := func(ns uint64) float64 { return float64(ns) / 1e3 }
	res.P50us = us(h.Percentile(50))
	res.P90us = us(h.Percentile(90))
	res.P99us = us(h.Percentile(99))
	res.P999us = us(h.Percentile(99.9))
	res.MaxUs = us(h.Max())
	res.MeanUs = h.Mean() / 1e3
	return res, nil
}

// worker owns one keep-alive connection and sends queued requests on it one at a time.
type worker struct {
	t    target
	conn net.Conn
	br   *bufio.Reader
	stop atomic.Bool

	mu         sync.Mutex // guards the counters against the final read after a forced stop
	hist       *stats.Histogram
	completed  int64
	non2xx     int64
	errs       int64
	reconnects int64
	firstErr   string
}

func newWorker(t target, c net.Conn) *worker {
	return &worker{t: t, conn: c, br: bufio.NewReaderSize(c, 32<<10), hist: stats.NewHistogram()}
}

func (w *worker) loop(queue <-chan time.Time) {
	for due := range queue {
		if w.stop.Load() {
			w.fail(errors.New("deadline passed"))
			continue
		}
		status, keep, err := w.roundTrip()
		if err != nil {
			w.fail(err)
			if !w.redial() {
				// Leave the rest of the queue to the other workers, or to the deadline.
				return
			}
			continue
		}
		lat := time.Since(due)
		w.mu.Lock()
		w.hist.Record(uint64(lat))
		w.completed++
		if status < 200 || status > 299 {
			w.non2xx++
		}
		w.mu.Unlock()
		if !keep && !w.redial() {
			return
		}
	}
}

func (w *worker) fail(err error) {
	w.mu.Lock()
	w.errs++
	if w.firstErr == "" {
		w.firstErr = err.Error()
	}
	w.mu.Unlock()
}

// redial replaces the connection, trying a bounded number of times.
func (w *worker) redial() bool {
	w.conn.Close()
	for try := 0; try < 5 && !w.stop.Load(); try++ {
		c, err := net.DialTimeout("tcp", w.t.addr, time.Second)
		if err == nil {
			w.mu.Lock()
			w.conn = c
			w.reconnects++
			w.mu.Unlock()
			w.br.Reset(c)
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// roundTrip writes one request and reads its response. It reports the status and whether the
// connection may be reused.
func (w *worker) roundTrip() (status int, keepAlive bool, err error) {
	if _, err := w.conn.Write(w.t.req); err != nil {
		return 0, false, err
	}
	line, err := w.readLine()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	keepAlive = line[7] == '1'
	contentLength := int64(-1)
	chunked := false
	for n := 0; ; n++ {
		if n > 200 {
			return 0, false, errors.New("too many header fields")
		}
		h, err := w.readLine()
		if err != nil {
			return 0, false, err
		}
		if len(h) == 0 {
			break
		}
		colon := bytes.IndexByte(h, ':')
		if colon < 0 {
			return 0, false, fmt.Errorf("bad header field %q", h)
		}
		name, value := h[:colon], bytes.TrimSpace(h[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			contentLength, err = strconv.ParseInt(string(value), 10, 64)
			if err != nil || contentLength < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.Contains(bytes.ToLower(value), []byte("close")) {
				keepAlive = false
			}
		}
	}
	switch {
	case status == 204 || status == 304 || (status >= 100 && status < 200):
	case chunked:
		if err := w.discardChunked(); err != nil {
			return 0, false, err
		}
	case contentLength >= 0:
		if _, err := w.br.Discard(int(contentLength)); err != nil {
			return 0, false, err
		}
	default:
		return 0, false, errors.New("response without a length: not supported")
	}
	return status, keepAlive, nil
}

func (w *worker) readLine() ([]byte, error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("header line too long")
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func (w *worker) discardChunked() error {
	for n := 0; n < 1<<20; n++ {
		line, err := w.readLine()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 {
			// Trailer fields, then the empty line.
			for k := 0; k < 200; k++ {
				t, err := w.readLine()
				if err != nil {
					return err
				}
				if len(t) == 0 {
					return nil
				}
			}
			return errors.New("too many trailer fields")
		}
		if _, err := w.br.Discard(int(size) + 2); err != nil {
			return err
		}
	}
	return errors.New("too many chunks")
}
