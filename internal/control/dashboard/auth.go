package dashboard

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"html"
	"net/http"
	"net/url"
	"strings"
)

// CookieName is the dashboard's session cookie. Its value is derived from the admin token
// (HMAC-SHA256 of a fixed label), so the cookie opens the dashboard's read-only pages and data
// but is not the API's bearer token.
const CookieName = "meshgate_dashboard"

// maxLoginBytes bounds a login form.
const maxLoginBytes = 4 << 10

// sessionValue is the cookie value that token grants.
func sessionValue(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("meshgate dashboard session v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// authorized reports whether r may see the dashboard: no token is set, or r carries the bearer
// token, or the session cookie.
func (h *handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
		subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1 {
		return true
	}
	c, err := r.Cookie(CookieName)
	return err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(h.cookie)) == 1
}

// serveLogin answers POST login (the token as form field "token"): a right token sets the
// session cookie (HttpOnly, SameSite=Strict, Path=/dashboard/, Secure over TLS) and sends the
// browser to the page. GET shows the form.
func (h *handler) serveLogin(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.writeLogin(w, http.StatusOK, "")
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "dashboard: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !sameOrigin(r) {
		http.Error(w, "dashboard: cross-origin login refused", http.StatusForbidden)
		return
	}
	if h.opts.Token == "" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBytes)
	if err := r.ParseForm(); err != nil {
		h.writeLogin(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(h.opts.Token)) != 1 {
		h.writeLogin(w, http.StatusUnauthorized, "Wrong token.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: h.cookie, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// serveLogout answers POST logout: the session cookie is cleared.
func (h *handler) serveLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "dashboard: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// sameOrigin reports whether a form post comes from this origin: the browser's Sec-Fetch-Site
// says so, or, from a browser that sends none, its Origin header (when sent) names the host the
// request was sent to.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// writeLogin answers with the login form and an optional message.
func (h *handler) writeLogin(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(bytes.Replace(h.login, []byte("{{MESSAGE}}"), []byte(html.EscapeString(msg)), 1))
}
