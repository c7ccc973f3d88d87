package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Bounds of the dashboard tests: how long the page may take to show the traffic (the proxies
// report their counters every few seconds), and one browser action.
const (
	dashboardTimeout = 60 * time.Second
	browserAction    = 15 * time.Second
)

// dashboardKey is the consumer billing's API key in the dashboard tests.
const dashboardKey = "k-dashboard-5e1f0a2b"

// dashboardConfig is the config the dashboard tests' gateways serve: an API-key route to users.
const dashboardConfig = `
authenticators:
  - name: keys
    apiKey: {header: X-Api-Key}
consumers:
  - name: billing
    apiKeys: [{sha256: "{{DIGEST}}"}]
routes:
  - name: users-api
    auth: {authenticators: [keys]}
    retry: {attempts: 2}
    backends: [{service: users}]
`

func dashboardDigest() string {
	d := sha256.Sum256([]byte(dashboardKey))
	return hex.EncodeToString(d[:])
}

// findChromium returns the path of a Chromium the tests can drive, skipping the test when there
// is none.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (scripts/test-deps installs it): skipping the browser test of the dashboard")
	return ""
}

// startBrowser starts headless Chromium and returns a tab's context; both end with the test.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(findChromium(t)),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as that action's context: it
	// gets no timeout of its own, and is bounded from outside instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(dashboardTimeout):
		cancelTab()
		cancelAlloc()
		t.Fatalf("chromium did not start within %v", dashboardTimeout)
	}
	return ctx
}

// browse runs actions in the tab, bounded by browserAction.
func browse(ctx context.Context, actions ...chromedp.Action[chromedp.Void]) error {
	c, cancel := context.WithTimeout(ctx, browserAction)
	defer cancel()
	return chromedp.Do(c, actions...)
}

// browseFor runs one action that returns a value, bounded by browserAction.
func browseFor[T any](ctx context.Context, a chromedp.Action[T]) (T, error) {
	c, cancel := context.WithTimeout(ctx, browserAction)
	defer cancel()
	return chromedp.Run(c, a)
}

// sendTraffic calls url through the gateway until the test ends (at most 2000 calls, ten a
// second): with billing's key, and every fifth call with a wrong key.
func sendTraffic(t *testing.T, url string) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := newHTTPClient()
		c.Timeout = 5 * time.Second
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range 2000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			key := dashboardKey
			if i%5 == 4 {
				key = "wrong-key"
			}
			req.Header.Set("X-Api-Key", key)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// waitPage polls the page until the JavaScript expression cond is true, failing the test after
// browserAction.
func waitPage(t *testing.T, ctx context.Context, cond string) {
	t.Helper()
	var last string
	ok := pollUntil(browserAction, func() bool {
		v, err := browseFor(ctx, chromedp.Evaluate[bool](cond))
		if err != nil {
			last = err.Error()
		}
		return err == nil && v
	})
	if !ok {
		body, _ := browseFor(ctx, chromedp.Evaluate[string](`document.body ? document.body.textContent : ""`))
		t.Fatalf("the page did not reach %s within %v (last error %q); it shows %q", cond, browserAction, last, body)
	}
}

// dashboardView is what the page shows, read from its DOM.
type dashboardView struct {
	Nodes     []string `json:"nodes"`
	Labels    []string `json:"labels"`
	Consumers []string `json:"consumers"`
	Reasons   []string `json:"reasons"`
	Routes    []string `json:"routes"`
	Certs     string   `json:"certs"`
	Error     string   `json:"error"`
	Box       struct {
		X, Y, W, H, DPR float64
	} `json:"box"`
}

const readDashboard = `(() => {
  const q = s => [...document.querySelectorAll(s)].map(n => n.textContent);
  const r = document.getElementById("graph").getBoundingClientRect();
  return {
    nodes: [...document.querySelectorAll("#graph g.node")].map(n => n.dataset.node),
    labels: q("#graph .edge-label"),
    consumers: q("#consumers tbody tr.consumer"),
    reasons: q("#refusals tbody tr.refusal .reason"),
    routes: q("#routes tbody tr.route"),
    certs: document.getElementById("certs").textContent,
    error: document.getElementById("error").textContent,
    box: {X: r.x, Y: r.y, W: r.width, H: r.height, DPR: window.devicePixelRatio},
  };
})()`

// containsAny reports whether any of list contains want.
func containsAny(list []string, want string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, want) })
}

// checkDashboard loads the page at url in the browser tab and waits until it shows the gateway's
// edge to users with its rate, billing's consumer row, a bad_credential refusal, the route and
// its policies, and wantCerts; then it checks that the graph's screenshot is not blank.
func checkDashboard(t *testing.T, ctx context.Context, url, wantCerts string) {
	t.Helper()
	if err := browse(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("#graph"))); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	var v dashboardView
	ready := func() bool {
		return slices.Contains(v.Nodes, "gateway") && slices.Contains(v.Nodes, "users") &&
			containsAny(v.Labels, "req/s") && containsAny(v.Labels, "p99") &&
			containsAny(v.Consumers, "billing") && slices.Contains(v.Reasons, "bad_credential") &&
			containsAny(v.Routes, "users-api") && containsAny(v.Routes, "auth: keys") &&
			strings.Contains(v.Certs, wantCerts)
	}
	ok := pollUntil(dashboardTimeout, func() bool {
		var err error
		v, err = browseFor(ctx, chromedp.Evaluate[dashboardView](readDashboard))
		return err == nil && ready()
	})
	if !ok {
		t.Fatalf("the dashboard did not show the traffic within %v: %+v", dashboardTimeout, v)
	}
	shot, err := browseFor(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.png")
	if dir := os.Getenv("MESHGATE_SCREENSHOT_DIR"); dir != "" {
		path = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decode the screenshot: %v", err)
	}
	b := v.Box
	box := image.Rect(int(b.X*b.DPR), int(b.Y*b.DPR), int((b.X+b.W)*b.DPR), int((b.Y+b.H)*b.DPR)).Intersect(img.Bounds())
	drawn, total := inkPixels(img, box)
	t.Logf("screenshot %s: graph box %v, %d of %d pixels drawn", path, box, drawn, total)
	if total == 0 || drawn < 500 || drawn*200 < total {
		t.Fatalf("the graph region %v of the screenshot is blank: %d of %d pixels differ from the background (screenshot %s)", box, drawn, total, path)
	}
}

// inkPixels counts the pixels in box that differ clearly from the box's background, taken as
// the colour of its top-left pixel.
func inkPixels(img image.Image, box image.Rectangle) (drawn, total int) {
	if box.Empty() {
		return 0, 0
	}
	br, bg, bb, _ := img.At(box.Min.X, box.Min.Y).RGBA()
	diff := func(a, b uint32) uint32 {
		if a > b {
			return a - b
		}
		return b - a
	}
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if diff(r, br)+diff(g, bg)+diff(b, bb) > 3*0x2000 {
				drawn++
			}
			total++
		}
	}
	return drawn, total
}

// TestDashboardControl opens the control plane's dashboard in headless Chromium while a gateway
// on the control plane serves API-key traffic to users (nginx, a registered workload): the graph
// shows the gateway → users edge with its rate, the consumers table billing, the refusals
// bad_credential, the routes users-api with its policies, and the CA's expiry.
func TestDashboardControl(t *testing.T) {
	t.Parallel()
	findChromium(t)
	c := startControl(t, filepath.Join(t.TempDir(), "data"), newControlAddrs(t))
	startUsers(t, c)
	public := freeAddr(t)
	applyText(t, c, fill(`version: 1
listeners:
  - {name: public, address: "{{PUBLIC}}", protocol: http}
`+dashboardConfig[1:]+`services:
  - name: users
    discovery: {service: users, namespace: shop}
`, "PUBLIC", public, "DIGEST", dashboardDigest()))
	startControlGateway(t, c, filepath.Join(t.TempDir(), "gw"), freeAddr(t))
	if !pollUntil(configTimeout, func() bool { code, _, _ := getBody("http://" + public + "/hello.txt"); return code == 401 }) {
		t.Fatalf("the gateway did not serve route users-api (401 without a key) within %v", configTimeout)
	}
	sendTraffic(t, "http://"+public+"/hello.txt")
	ctx := startBrowser(t)
	checkDashboard(t, ctx, "http://"+c.Admin+"/dashboard/", "signing certificate expires")
}

// TestDashboardGatewayFile opens the dashboard of a gateway from a file whose admin API needs a
// token: the page asks for it, the login form sets the session cookie, and the page then shows
// the gateway's own traffic to users.
func TestDashboardGatewayFile(t *testing.T) {
	t.Parallel()
	findChromium(t)
	const token = "dashboard-admin-token-0123456789"
	up := startNginx(t, map[string]string{"hello.txt": "hello\n"})
	admin, public := freeAddr(t), freeAddr(t)
	cfg := fill(`version: 1
admin: {address: "{{ADMIN}}", tokenEnv: DASHBOARD_ADMIN_TOKEN}
accessLog: {path: "off"}
listeners:
  - {name: public, address: "{{PUBLIC}}"}
`+dashboardConfig[1:]+`services:
  - name: users
    endpoints: [{address: "{{UP}}"}]
`, "ADMIN", admin, "PUBLIC", public, "UP", up, "DIGEST", dashboardDigest())
	path := filepath.Join(t.TempDir(), "meshgate.yaml")
	writeFileAtomic(t, path, cfg)
	p := startProcessEnv(t, "meshgate", []string{"DASHBOARD_ADMIN_TOKEN=" + token}, meshgateBin,
		"gateway", "--config", path, "--log-level", "debug")
	m := &Meshgate{Process: p, Admin: admin, ConfigPath: path}
	m.waitReady()
	sendTraffic(t, "http://"+public+"/hello.txt")
	ctx := startBrowser(t)

	// Without the token the page is the login form; a wrong token stays there.
	if err := browse(ctx, chromedp.Navigate("http://"+admin+"/dashboard/"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Submit(chromedp.CSS("#token"))); err != nil {
		t.Fatalf("login form: %v", err)
	}
	waitPage(t, ctx, `document.body.textContent.includes("Wrong token.") && !!document.getElementById("token")`)
	if err := browse(ctx, chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Submit(chromedp.CSS("#token"))); err != nil {
		t.Fatalf("log in: %v", err)
	}
	waitPage(t, ctx, `!!document.getElementById("graph")`)
	checkDashboard(t, ctx, "http://"+admin+"/dashboard/", "this gateway runs from a file")

	// The session cookie is HttpOnly: the page's script cannot read it.
	if cookies, err := browseFor(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || cookies != "" {
		t.Fatalf("document.cookie = %q (%v), want none visible", cookies, err)
	}
}
