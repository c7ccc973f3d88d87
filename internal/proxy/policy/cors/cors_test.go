package cors

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// recorder is a proxy.ResponseWriter that keeps what is written.
type recorder struct {
	resp     *httpmsg.Response
	body     strings.Builder
	finished bool
}

func (r *recorder) WriteHead(resp *httpmsg.Response) error {
	if r.resp != nil {
		return errors.New("head written twice")
	}
	c := *resp
	c.Header = resp.Header.Clone()
	r.resp = &c
	return nil
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.resp == nil {
		return 0, errors.New("write before head")
	}
	return r.body.Write(p)
}
func (r *recorder) Flush() error                { return nil }
func (r *recorder) Finish(httpmsg.Header) error { r.finished = true; return nil }
func (r *recorder) HeadWritten() bool           { return r.resp != nil }
func (r *recorder) Hijack() (net.Conn, *bufio.Reader, error) {
	return nil, nil, proxy.ErrNotHijackable
}

// upstream is the next handler: it counts the requests that reach it.
type upstream struct{ hits int }

func (u *upstream) Serve(*proxy.Exchange) error {
	u.hits++
	return nil
}

func newExchange(method string, header ...httpmsg.Field) (*proxy.Exchange, *recorder) {
	w := &recorder{}
	return &proxy.Exchange{Req: httpmsg.Request{Method: method, Header: header}, W: w, ID: "req-1", Route: "r"}, w
}

// field is shorthand for a header field.
func field(name, value string) httpmsg.Field { return httpmsg.Field{Name: name, Value: value} }

func mustNew(t *testing.T, p *config.CORSPolicy) proxy.Middleware {
	t.Helper()
	mw, err := New("r", p)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return mw
}

// forward runs an actual (non-preflight) request through mw and returns the upstream response
// head after the policy's edits; upstreamHeader is what the upstream sent.
func forward(t *testing.T, mw proxy.Middleware, upstreamHeader httpmsg.Header, header ...httpmsg.Field) httpmsg.Header {
	t.Helper()
	up := &upstream{}
	x, w := newExchange("GET", header...)
	if err := mw(up).Serve(x); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if up.hits != 1 || w.resp != nil {
		t.Fatalf("upstream hits %d, gateway response %+v; want the request forwarded", up.hits, w.resp)
	}
	resp := httpmsg.Response{Status: 200, Header: upstreamHeader.Clone()}
	for _, edit := range x.ResponseEdits {
		edit(&resp)
	}
	return resp.Header
}

func TestOriginMatching(t *testing.T) {
	mw := mustNew(t, &config.CORSPolicy{AllowOrigins: []string{
		"https://App.Example.com", "http://localhost:3000", "https://*.example.com",
		"https://*.api.example.org:8443", "http://[::1]:8080",
	}})
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{"https://app.example.com", true},
		{"https://APP.EXAMPLE.COM", true},
		{"https://app.example.com:443", true},
		{"HTTPS://app.example.com", true},
		{"http://localhost:3000", true},
		{"http://localhost", false},
		{"http://localhost:3001", false},
		{"https://localhost:3000", false},
		{"http://[::1]:8080", true},
		{"http://[0:0::1]:8080", true},
		{"http://[::2]:8080", false},
		{"https://a.example.com", true},
		{"https://a.b.example.com", true},
		{"https://A-1.Example.COM", true},
		{"https://example.com", false},
		{"https://.example.com", false},
		{"https://a..example.com", false},
		{"https://example.com.evil.com", false},
		{"https://evilexample.com", false},
		{"https://a.evilexample.com", false},
		{"http://a.example.com", false},
		{"https://a.example.com:8443", false},
		{"https://x.api.example.org:8443", true},
		{"https://x.api.example.org", false},
		{"https://a.example.com/", false},
		{"https://user@a.example.com", false},
		{"https://a.example.com:", false},
		{"https://a.example.com:+443", false},
		{"https://a.example.com:99999", false},
		{"https://a.example.com https://b.example.com", false},
		{"null", false},
		{"", false},
		{"*", false},
	} {
		t.Run(tc.origin, func(t *testing.T) {
			h := forward(t, mw, nil, field("Origin", tc.origin))
			got, has := h.Get("Access-Control-Allow-Origin")
			if has != tc.want || (has && got != tc.origin) {
				t.Errorf("Access-Control-Allow-Origin = %q (present %v), want present %v echoing the origin", got, has, tc.want)
			}
			if h.Value("Vary") != "Origin" {
				t.Errorf("Vary = %q, want Origin", h.Value("Vary"))
			}
		})
	}
}

func TestAnyOrigin(t *testing.T) {
	star := mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"*"}, ExposeHeaders: []string{"X-Total"}})
	h := forward(t, star, nil, field("Origin", "https://anything.test"))
	if h.Value("Access-Control-Allow-Origin") != "*" || h.Value("Access-Control-Expose-Headers") != "X-Total" {
		t.Errorf("with [*]: %v; want Access-Control-Allow-Origin * and the exposed headers", h)
	}
	if h.Has("Access-Control-Allow-Credentials") {
		t.Error(`credentials allowed with "*"`)
	}
	if h := forward(t, star, nil, field("Origin", "null")); h.Has("Access-Control-Allow-Origin") {
		t.Errorf(`the "null" origin matched "*": %v`, h)
	}

	mixed := mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"*", "https://a.test"}})
	if h := forward(t, mixed, nil, field("Origin", "https://b.test")); h.Value("Access-Control-Allow-Origin") != "https://b.test" {
		t.Errorf(`with "*" among others: %v; want the origin echoed`, h)
	}

	null := mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"null", "https://*.example.com"}})
	if h := forward(t, null, nil, field("Origin", "null")); h.Value("Access-Control-Allow-Origin") != "null" {
		t.Errorf(`"null" listed exactly: %v; want it allowed`, h)
	}
}

// TestActualRequest: the policy's headers replace the upstream's CORS headers, and Vary gains
// Origin once.
func TestActualRequest(t *testing.T) {
	mw := mustNew(t, &config.CORSPolicy{
		AllowOrigins: []string{"https://app.example.com"}, AllowCredentials: true,
		ExposeHeaders: []string{"X-Total", "X-Page"},
	})
	fromUpstream := httpmsg.Header{
		field("Content-Type", "application/json"), field("Access-Control-Allow-Origin", "*"),
		field("Access-Control-Expose-Headers", "X-Secret"), field("Vary", "Accept-Encoding"),
	}

	h := forward(t, mw, fromUpstream, field("Origin", "https://app.example.com"))
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Expose-Headers": "X-Total, X-Page",
		"Access-Control-Allow-Credentials": "true", "Content-Type": "application/json",
	} {
		if h.Count(name) != 1 || h.Value(name) != want {
			t.Errorf("allowed origin: %s = %q (%d fields), want %q", name, h.Value(name), h.Count(name), want)
		}
	}
	if h.Count("Vary") != 2 || !httpmsg.HasToken(h[len(h)-1].Value, "Origin") {
		t.Errorf("allowed origin: Vary fields %v; want Accept-Encoding kept and Origin added", h)
	}

	for _, header := range [][]httpmsg.Field{{field("Origin", "https://evil.example")}, nil} {
		h = forward(t, mw, fromUpstream, header...)
		for _, name := range []string{"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Allow-Credentials"} {
			if h.Has(name) {
				t.Errorf("request with %v: %s sent", header, name)
			}
		}
		if h.Count("Vary") != 2 {
			t.Errorf("request with %v: Vary fields %v; want Origin added", header, h)
		}
	}

	h = forward(t, mw, httpmsg.Header{field("vary", "accept, ORIGIN")}, field("Origin", "https://app.example.com"))
	if h.Count("Vary") != 1 {
		t.Errorf("Vary already naming Origin: %v; want it left alone", h)
	}
	h = forward(t, mw, httpmsg.Header{field("Vary", "*")})
	if h.Count("Vary") != 1 {
		t.Errorf("Vary *: %v; want it left alone", h)
	}

	// Two Origin fields are ambiguous: no origin is allowed.
	h = forward(t, mw, nil, field("Origin", "https://app.example.com"), field("Origin", "https://evil.example"))
	if h.Has("Access-Control-Allow-Origin") {
		t.Errorf("two Origin fields: %v", h)
	}

	// OPTIONS without Access-Control-Request-Method is an ordinary request.
	up := &upstream{}
	x, w := newExchange("OPTIONS", field("Origin", "https://app.example.com"))
	if err := mw(up).Serve(x); err != nil || up.hits != 1 || w.resp != nil {
		t.Errorf("OPTIONS without Access-Control-Request-Method: err %v, upstream hits %d, response %+v", err, up.hits, w.resp)
	}
}

// preflight runs a preflight through mw and returns the gateway's answer or error.
func preflight(t *testing.T, mw proxy.Middleware, header ...httpmsg.Field) (*recorder, *proxy.Exchange, error) {
	t.Helper()
	up := &upstream{}
	x, w := newExchange("OPTIONS", header...)
	err := mw(up).Serve(x)
	if up.hits != 0 {
		t.Error("a preflight was forwarded")
	}
	return w, x, err
}

func TestPreflight(t *testing.T) {
	mw := mustNew(t, &config.CORSPolicy{
		AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"get", "PUT", "PATCH"},
		AllowHeaders: []string{"Content-Type", "X-Trace-Id"}, AllowCredentials: true, MaxAge: 90 * time.Second,
	})
	w, x, err := preflight(t, mw, field("Origin", "https://app.example.com"),
		field("Access-Control-Request-Method", "PATCH"), field("Access-Control-Request-Headers", "content-type,X-TRACE-ID"))
	if err != nil {
		t.Fatal(err)
	}
	if w.resp == nil || w.resp.Status != 204 || !w.finished || w.body.Len() != 0 {
		t.Fatalf("response %+v body %q; want a finished 204", w.resp, w.body.String())
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin": "https://app.example.com", "Access-Control-Allow-Methods": "GET, PUT, PATCH",
		"Access-Control-Allow-Headers": "content-type, x-trace-id", "Access-Control-Max-Age": "90",
		"Access-Control-Allow-Credentials": "true", "X-Meshgate-Reason": ReasonPreflight,
		"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	} {
		if got := w.resp.Header.Value(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if x.Status != 204 || x.Reason != ReasonPreflight {
		t.Errorf("exchange status %d reason %q", x.Status, x.Reason)
	}

	// Defaults: GET, HEAD, POST; ten minutes; no credentials; "*" answered for ["*"].
	w, _, err = preflight(t, mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"*"}}),
		field("Origin", "https://a.test"), field("Access-Control-Request-Method", "POST"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, POST", "Access-Control-Max-Age": "600",
	} {
		if got := w.resp.Header.Value(name); got != want {
			t.Errorf("defaults: %s = %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"Access-Control-Allow-Headers", "Access-Control-Allow-Credentials"} {
		if w.resp.Header.Has(name) {
			t.Errorf("defaults: %s sent", name)
		}
	}

	// "*" methods and headers echo what was asked, but Authorization must be listed.
	w, _, err = preflight(t, mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"https://a.test"}, AllowMethods: []string{"*"}, AllowHeaders: []string{"*", "authorization"}}),
		field("Origin", "https://a.test"), field("Access-Control-Request-Method", "PURGE"),
		field("Access-Control-Request-Headers", "x-a, , authorization"), field("Access-Control-Request-Headers", "x-b"))
	if err != nil {
		t.Fatal(err)
	}
	if got := w.resp.Header.Value("Access-Control-Allow-Methods"); got != "PURGE" {
		t.Errorf(`"*" methods: Access-Control-Allow-Methods = %q`, got)
	}
	if got := w.resp.Header.Value("Access-Control-Allow-Headers"); got != "x-a, authorization, x-b" {
		t.Errorf(`"*" headers: Access-Control-Allow-Headers = %q`, got)
	}
}

func TestPreflightRejected(t *testing.T) {
	mw := mustNew(t, &config.CORSPolicy{
		AllowOrigins: []string{"https://*.example.com"}, AllowMethods: []string{"GET", "PATCH"}, AllowHeaders: []string{"X-A"},
	})
	anyHeader := mustNew(t, &config.CORSPolicy{AllowOrigins: []string{"https://a.example.com"}, AllowHeaders: []string{"*"}})
	for _, tc := range []struct {
		name   string
		mw     proxy.Middleware
		origin string
		method string
		hdrs   string
		want   string
	}{
		{"origin", mw, "https://example.com.evil.com", "GET", "", "origin"},
		{"null origin", mw, "null", "GET", "", "origin"},
		{"method", mw, "https://a.example.com", "DELETE", "", "method"},
		{"method case", mw, "https://a.example.com", "patch", "", "method"},
		{"empty method", mw, "https://a.example.com", "", "", "method"},
		{"header", mw, "https://a.example.com", "GET", "x-a, x-b", `request header "x-b"`},
		{"bad header name", mw, "https://a.example.com", "GET", "x a", "request header"},
		{"authorization under *", anyHeader, "https://a.example.com", "GET", "x-any, Authorization", `request header "authorization"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []httpmsg.Field{field("Origin", tc.origin), field("Access-Control-Request-Method", tc.method)}
			if tc.hdrs != "" {
				hdr = append(hdr, field("Access-Control-Request-Headers", tc.hdrs))
			}
			w, _, err := preflight(t, tc.mw, hdr...)
			var pe *proxy.Error
			if !errors.As(err, &pe) || pe.Status != 403 || pe.Reason != proxy.ReasonCORSRejected || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want 403 cors_rejected naming the %s", err, tc.want)
			}
			if w.resp != nil {
				t.Errorf("the policy wrote %+v itself", w.resp)
			}
		})
	}
}

func TestNewRejectsInvalidPolicies(t *testing.T) {
	for _, tc := range []struct {
		p    *config.CORSPolicy
		want string
	}{
		{nil, "no policy"},
		{&config.CORSPolicy{}, "allowOrigins is empty"},
		{&config.CORSPolicy{AllowOrigins: []string{"*"}, AllowCredentials: true}, `allowCredentials cannot be used with the origin "*"`},
		{&config.CORSPolicy{AllowOrigins: []string{"app.example.com"}}, `"app.example.com"`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://app.example.com/"}}, "no path"},
		{&config.CORSPolicy{AllowOrigins: []string{"https://app.example.com:http"}}, "bad port"},
		{&config.CORSPolicy{AllowOrigins: []string{"https://*"}}, `"https://*": want scheme "://*." domain`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://a.*.example.com"}}, `"https://a.*.example.com": want scheme "://*." domain`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://*.*.example.com"}}, "bad host"},
		{&config.CORSPolicy{AllowOrigins: []string{"https://*.[::1]"}}, "bad host"},
		{&config.CORSPolicy{AllowOrigins: []string{"https://a.test"}, AllowMethods: []string{"GE T"}}, `allowMethods: "GE T"`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://a.test"}, AllowHeaders: []string{"X:A"}}, `allowHeaders: "X:A"`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://a.test"}, ExposeHeaders: []string{""}}, `exposeHeaders: ""`},
		{&config.CORSPolicy{AllowOrigins: []string{"https://a.test"}, MaxAge: -time.Second}, "maxAge -1s is negative"},
	} {
		_, err := New("r", tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), `cors: route "r": `) {
			t.Errorf("New(%+v) = %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
}

// BenchmarkActualRequest measures an allowed request forwarded and its response edited.
func BenchmarkActualRequest(b *testing.B) {
	mw, err := New("r", &config.CORSPolicy{AllowOrigins: []string{"https://app.example.com", "https://*.example.org"}})
	if err != nil {
		b.Fatal(err)
	}
	h := mw(&upstream{})
	x, _ := newExchange("GET", field("Origin", "https://a.example.org"))
	resp := httpmsg.Response{Header: make(httpmsg.Header, 0, 8)}
	b.ReportAllocs()
	for b.Loop() {
		x.ResponseEdits = x.ResponseEdits[:0]
		_ = h.Serve(x)
		resp.Header = resp.Header[:0]
		for _, e := range x.ResponseEdits {
			e(&resp)
		}
	}
}
