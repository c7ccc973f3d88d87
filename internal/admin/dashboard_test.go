package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/control/dashboard"
	"github.com/meshgate/meshgate/internal/control/telemetry"
	"github.com/meshgate/meshgate/internal/gateway"
	"github.com/meshgate/meshgate/internal/observe/metrics"
)

const testToken = "t-0123456789abcdef-dashboard"

// startDashboardGateway runs a gateway from a config (route "api" for host app.test to an
// upstream) with its admin API, and returns the public and admin base URLs.
func startDashboardGateway(t *testing.T, token string) (public, admin string) {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }))
	t.Cleanup(up.Close)
	gw := gateway.New(slog.New(slog.DiscardHandler), metrics.New())
	cfg := fmt.Sprintf(`version: 1
admin: {address: "off"}
accessLog: {path: "off"}
listeners: [{name: public, address: "127.0.0.1:0"}]
routes:
  - name: api
    hosts: [app.test]
    retry: {attempts: 2}
    backends: [{service: app}]
services:
  - name: app
    endpoints: [{address: %q}]
`, strings.TrimPrefix(up.URL, "http://"))
	if _, err := gw.LoadBytes("test.yaml", []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	adm := New(gw, Options{Address: "127.0.0.1:0", Token: token}, slog.New(slog.DiscardHandler))
	if err := adm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = adm.Shutdown(ctx)
		_ = gw.Shutdown(ctx)
	})
	return "http://" + gw.Addr("public").String(), "http://" + adm.Addr().String()
}

// noRedirect is a client that shows redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func send(t *testing.T, c *http.Client, method, u, host string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestDashboardData serves traffic through a gateway from a config and reads its dashboard's
// data: the edge in top, the anonymous consumer, the no_route refusal, the route with its
// policies and the status, in the shapes of the control plane's API.
func TestDashboardData(t *testing.T) {
	public, admin := startDashboardGateway(t, "")
	c := noRedirect()
	for range 5 {
		if resp, _ := send(t, c, "GET", public+"/x", "app.test", nil, ""); resp.StatusCode != 200 {
			t.Fatalf("through the gateway: %d", resp.StatusCode)
		}
	}
	if resp, _ := send(t, c, "GET", public+"/x", "other.test", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("unrouted host: %d, want 404", resp.StatusCode)
	}
	if resp, body := send(t, c, "GET", admin+"/dashboard/", "", nil, ""); resp.StatusCode != 200 || !strings.Contains(body, `id="graph"`) {
		t.Fatalf("page: %d %q", resp.StatusCode, body)
	}
	var top struct {
		Window string             `json:"window"`
		Edges  []telemetry.TopRow `json:"edges"`
	}
	getJSON(t, c, admin+"/dashboard/api/top?window=1m", nil, &top)
	var app *telemetry.TopRow
	for i := range top.Edges {
		if top.Edges[i].Direction == "edge" && top.Edges[i].Service == "app" {
			app = &top.Edges[i]
		}
	}
	if app == nil || app.Requests != 5 || app.Route != "api" || app.Success != 1 || app.RPS <= 0 {
		t.Fatalf("top: no edge row for app with 5 requests: %+v", top)
	}
	// The counters were moved into the window, not lost: a second look sees them again.
	getJSON(t, c, admin+"/dashboard/api/top?window=1m", nil, &top)
	if len(top.Edges) == 0 || top.Edges[0].Requests < 5 {
		t.Fatalf("top, asked again: %+v", top)
	}
	var cons struct {
		Consumers []telemetry.ConsumerRow `json:"consumers"`
	}
	// A request is recorded just after its response is sent: the last one may land a moment
	// after the client has its answer.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		getJSON(t, c, admin+"/dashboard/api/consumers", nil, &cons)
		if len(cons.Consumers) == 1 && cons.Consumers[0].Consumer == "" && cons.Consumers[0].Requests == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumers: %+v", cons)
		}
	}
	var recs []struct {
		Status int    `json:"status"`
		Reason string `json:"reason"`
	}
	getJSON(t, c, admin+"/dashboard/api/requests?status=4xx&n=50", nil, &recs)
	if len(recs) != 1 || recs[0].Status != 404 || recs[0].Reason != "no_route" {
		t.Fatalf("refusals: %+v", recs)
	}
	var routes struct {
		Routes []map[string]any `json:"routes"`
	}
	getJSON(t, c, admin+"/dashboard/api/routes", nil, &routes)
	if len(routes.Routes) != 1 || routes.Routes[0]["name"] != "api" || routes.Routes[0]["retry"] == nil {
		t.Fatalf("routes: %+v", routes)
	}
	var st struct {
		Version uint64 `json:"version"`
	}
	getJSON(t, c, admin+"/dashboard/api/status", nil, &st)
	if st.Version == 0 {
		t.Fatalf("status: %+v", st)
	}
	if resp, _ := send(t, c, "GET", admin+"/dashboard/api/top?window=nope", "", nil, ""); resp.StatusCode != 400 {
		t.Fatalf("bad window: %d, want 400", resp.StatusCode)
	}
}

func getJSON(t *testing.T, c *http.Client, u string, hdr map[string]string, v any) {
	t.Helper()
	resp, body := send(t, c, "GET", u, "", hdr, "")
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, body)
	}
}

// TestDashboardAuth checks the dashboard behind an admin token: the page and its data need the
// bearer token or the session cookie the login form sets; the cookie opens nothing else.
func TestDashboardAuth(t *testing.T) {
	_, admin := startDashboardGateway(t, testToken)
	c := noRedirect()
	form := func(tok string) string { return url.Values{"token": {tok}}.Encode() }
	formHdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}

	resp, body := send(t, c, "POST", admin+"/dashboard/login", "", formHdr, form(testToken))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/" {
		t.Fatalf("login: %d %q", resp.StatusCode, body)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == dashboard.CookieName {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/dashboard/" ||
		strings.Contains(session.Value, testToken) {
		t.Fatalf("login cookie: %+v", session)
	}
	cookie := map[string]string{"Cookie": dashboard.CookieName + "=" + session.Value}
	cookieForm := map[string]string{"Cookie": cookie["Cookie"], "Content-Type": "application/x-www-form-urlencoded"}
	bearer := map[string]string{"Authorization": "Bearer " + testToken}

	cases := []struct {
		desc, method, path string
		hdr                map[string]string
		body               string
		want               int
		contains           string
	}{
		{"page without credentials shows the login form", "GET", "/dashboard/", nil, "", 401, `name="token"`},
		{"data without credentials", "GET", "/dashboard/api/top", nil, "", 401, ""},
		{"page with the bearer token", "GET", "/dashboard/", bearer, "", 200, `id="graph"`},
		{"data with the bearer token", "GET", "/dashboard/api/top", bearer, "", 200, `"edges"`},
		{"page with the cookie", "GET", "/dashboard/", cookie, "", 200, `id="graph"`},
		{"data with the cookie", "GET", "/dashboard/api/consumers", cookie, "", 200, `"consumers"`},
		{"wrong cookie", "GET", "/dashboard/api/top", map[string]string{"Cookie": dashboard.CookieName + "=00"}, "", 401, ""},
		{"the cookie does not open the API", "GET", "/config", cookie, "", 401, ""},
		{"the cookie does not open a dot-segment path", "GET", "/dashboard/../config", cookie, "", 401, ""},
		{"the cookie does not change config", "PUT", "/config", cookie, "version: 1\n", 401, ""},
		{"data is read-only", "POST", "/dashboard/api/top", cookieForm, "", 405, ""},
		{"wrong token", "POST", "/dashboard/login", formHdr, form("nope"), 401, "Wrong token."},
		{"cross-origin login", "POST", "/dashboard/login",
			map[string]string{"Content-Type": formHdr["Content-Type"], "Origin": "http://evil.test"}, form(testToken), 403, ""},
		{"cross-site login by fetch metadata", "POST", "/dashboard/login",
			map[string]string{"Content-Type": formHdr["Content-Type"], "Sec-Fetch-Site": "same-site"}, form(testToken), 403, ""},
		{"script and style are public", "GET", "/dashboard/app.js", nil, "", 200, "REFRESH_MS"},
		{"live stays open", "GET", "/live", nil, "", 200, "live"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, admin+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = tc.path // keep dot segments as sent
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := resp.StatusCode
			if got == http.StatusMovedPermanently { // the mux cleans paths by redirecting; follow by hand
				t.Logf("redirected to %s", resp.Header.Get("Location"))
				resp2, b2 := send(t, c, tc.method, admin+resp.Header.Get("Location"), "", tc.hdr, tc.body)
				got, b = resp2.StatusCode, []byte(b2)
			}
			if got != tc.want || !strings.Contains(string(b), tc.contains) {
				t.Fatalf("%s %s: %d, want %d with %q; body %q", tc.method, tc.path, got, tc.want, tc.contains, b)
			}
			if h := resp.Header.Get("Content-Security-Policy"); strings.HasPrefix(tc.path, "/dashboard/") && !strings.Contains(tc.path, "..") && !strings.Contains(h, "default-src 'none'") {
				t.Errorf("no content security policy: %q", h)
			}
		})
	}
}
