package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/testport"
)

const (
	// readyTimeout bounds how long a started meshgate may take to answer 200 on /ready.
	readyTimeout = 15 * time.Second
	// stopTimeout is how long a stopped meshgate may take to exit after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// requestTimeout bounds every single request a test makes.
	requestTimeout = 10 * time.Second
	// pollInterval is the pause between two attempts of a bounded poll.
	pollInterval = 50 * time.Millisecond
	// logTail is how much of a child process's output is printed when a test fails.
	logTail = 32 << 10
)

// lockedBuffer is a bytes.Buffer safe for one writer (a child process's output copier) and
// concurrent readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns at most the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// Process is a child process started by a test (meshgate or nginx), with its output captured.
// It is stopped when the test ends, and its output is printed if the test failed.
type Process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // the result of cmd.Wait, valid once done is closed
}

// startProcess starts bin with args, captures its output and registers its stop (SIGTERM, then
// SIGKILL after stopTimeout) and the printing of its output on failure with t.Cleanup.
func startProcess(t *testing.T, name, bin string, args ...string) *Process {
	t.Helper()
	return startProcessEnv(t, name, nil, bin, args...)
}

// startProcessEnv is startProcess with extra environment variables ("NAME=value") added to the
// test's own.
func startProcessEnv(t *testing.T, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, name: name, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s %s\n--- stdout ---\n%s\n--- stderr ---\n%s", name, strings.Join(args, " "),
				tail(p.stdout.String(), logTail), tail(p.stderr.String(), logTail))
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *Process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process unless it has exited.
func (p *Process) signal(sig os.Signal) {
	p.t.Helper()
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits up to d for the process to exit and returns its exit code; ok is false when it was
// still running after d.
func (p *Process) wait(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
	case <-time.After(d):
		return 0, false
	}
	if p.err == nil {
		return 0, true
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode(), true
	}
	return -1, true
}

// stop sends SIGTERM and waits up to stopTimeout, then kills the process and waits for it.
func (p *Process) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if _, ok := p.wait(stopTimeout); ok {
		return
	}
	p.t.Errorf("%s did not exit within %v of SIGTERM; killing it", p.name, stopTimeout)
	_ = p.cmd.Process.Kill()
	if _, ok := p.wait(stopTimeout); !ok {
		p.t.Errorf("%s did not exit after SIGKILL", p.name)
	}
}

// Meshgate is a running meshgate process and where its admin API listens.
type Meshgate struct {
	*Process
	// Admin is the admin API's host:port.
	Admin string
	// ConfigPath is the config file it runs, when started with startGateway.
	ConfigPath string
}

// startGateway writes cfg to a file in a fresh temporary directory, starts
// `meshgate gateway --config FILE` on it and waits until the admin API on adminAddr is ready.
func startGateway(t *testing.T, adminAddr, cfg string) *Meshgate {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meshgate.yaml")
	writeFileAtomic(t, path, cfg)
	return startGatewayFile(t, adminAddr, path)
}

// startGatewayFile starts `meshgate gateway --config path` and waits for its admin API on
// adminAddr to be ready.
func startGatewayFile(t *testing.T, adminAddr, path string) *Meshgate {
	t.Helper()
	p := startProcess(t, "meshgate", meshgateBin, "gateway", "--config", path, "--log-level", "debug")
	m := &Meshgate{Process: p, Admin: adminAddr, ConfigPath: path}
	m.waitReady()
	return m
}

// waitReady polls GET /ready on the admin API until it answers 200, failing the test after
// readyTimeout or when the process exits first.
func (m *Meshgate) waitReady() {
	m.t.Helper()
	client := newHTTPClient()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		if m.exited() {
			code, _ := m.wait(0)
			m.t.Fatalf("meshgate exited with code %d before it was ready", code)
		}
		resp, err := client.Get("http://" + m.Admin + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(pollInterval)
	}
	m.t.Fatalf("meshgate not ready on %s within %v: %s", m.Admin, readyTimeout, last)
}

// adminGet fetches path from the admin API and returns its status and body.
func (m *Meshgate) adminGet(path string) (int, string) {
	m.t.Helper()
	resp, body := httpGet(m.t, newHTTPClient(), "http://"+m.Admin+path, nil)
	return resp.StatusCode, body
}

// metric returns the value of the sample of the metrics exposition whose name and labels are
// exactly series (as in `meshgate_config_reloads_total{result="failure"}`), or 0 when absent.
func (m *Meshgate) metric(series string) float64 {
	m.t.Helper()
	code, body := m.adminGet("/metrics")
	if code != http.StatusOK {
		m.t.Fatalf("GET /metrics: status %d", code)
	}
	return metricValue(body, series)
}

// metricValue finds series in a Prometheus text exposition and returns its value, or 0.
func metricValue(exposition, series string) float64 {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}

// freeAddr returns a loopback host:port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testport.Addr(t)
}

// fill replaces each {{KEY}} in tmpl with its value from kv, given as key, value pairs.
func fill(tmpl string, kv ...string) string {
	pairs := make([]string, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, "{{"+kv[i]+"}}", kv[i+1])
	}
	out := strings.NewReplacer(pairs...).Replace(tmpl)
	if i := strings.Index(out, "{{"); i >= 0 {
		panic("fill: unreplaced placeholder in: " + out[i:])
	}
	return out
}

// writeFileAtomic writes data to a temporary file beside path and renames it over path, as
// editors and config management tools do.
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		_ = f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// newHTTPClient returns an HTTP/1.1 client that never uses a proxy and gives up after
// requestTimeout.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpGet sends GET url with the given extra header and returns the response and its whole body.
func httpGet(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(body)
}

// pollUntil calls cond every pollInterval until it returns true or d has passed, and reports
// whether it did.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}

// startUpstream starts a Go HTTP/1.1 server on loopback with h and returns its host:port. It is
// closed when the test ends.
func startUpstream(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// requireTool fails the test when the named program is not installed.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: run scripts/test-deps (it installs nginx, curl and the HTTP/2 tools)", name)
	}
	return p
}

// curlResult is what curl reported about one exchange.
type curlResult struct {
	// Status is the response status code.
	Status int
	// Version is curl's %{http_version}: "1.1", "2", ...
	Version string
	// Header holds the fields of the final response head.
	Header http.Header
	// Body is the response body.
	Body string
}

// runCurl runs curl with args (plus options that make it quiet, bounded and proxy-free) and
// returns the final response. The test fails when curl fails.
func runCurl(t *testing.T, args ...string) curlResult {
	t.Helper()
	bin := requireTool(t, "curl")
	dir := t.TempDir()
	hdrFile, bodyFile := filepath.Join(dir, "head"), filepath.Join(dir, "body")
	full := append([]string{"-q", "-sS", "--noproxy", "*", "--max-time", "10",
		"-D", hdrFile, "-o", bodyFile, "-w", "%{http_code} %{http_version}"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var r curlResult
	if _, err := fmt.Sscanf(stdout.String(), "%d %s", &r.Status, &r.Version); err != nil {
		t.Fatalf("curl %s: cannot parse %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
	head, err := os.ReadFile(hdrFile)
	if err != nil {
		t.Fatal(err)
	}
	r.Header = parseLastHead(string(head))
	body, err := os.ReadFile(bodyFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	r.Body = string(body)
	return r
}

// parseLastHead parses the fields of the last response head in curl's -D output (which also
// holds any 1xx heads before it).
func parseLastHead(s string) http.Header {
	blocks := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n")
	last := ""
	for _, b := range blocks {
		if strings.TrimSpace(b) != "" {
			last = b
		}
	}
	h := http.Header{}
	lines := strings.Split(last, "\n")
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h
}

// ctxTimeout returns a context that ends after d or when the test ends.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
