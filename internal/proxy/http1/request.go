package http1

import (
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ParseRequest parses one request head from the start of buf into req.
//
// It returns ErrIncomplete while buf does not yet hold a whole head and is shorter than
// lim.MaxHeaderBytes, and a *ParseError (see the Reason constants) when the head is malformed,
// ambiguous or too large. On success n is the length of the head including its final CRLFCRLF (and
// any empty lines skipped before the request line); the body, if any, starts at buf[n].
//
// Every string in req is sliced from a single copy of the head, so req never aliases buf. req.Header
// reuses its capacity (req.Header[:0]); the other fields are overwritten. The Host field is moved to
// req.Host and not kept in req.Header; all other fields, Content-Length and Transfer-Encoding
// included, stay in arrival order. For an absolute-form target, Path and Query come from the URI
// and Host is its authority (which must equal the Host field). For CONNECT, Host is the
// authority-form target and Path is empty; for "OPTIONS *", Path is "*".
//
// Framing: Chunked with ContentLength -1 for "Transfer-Encoding: chunked", the Content-Length value
// otherwise, or 0. Close is set for "Connection: close" and for HTTP/1.0 without keep-alive.
// Upgrade and Expect100 are set only for HTTP/1.1. On error the contents of req are unspecified.
func ParseRequest(buf []byte, lim Limits, req *httpmsg.Request) (n int, err error) {
	maxBytes := lim.maxBytes()
	window, start, ok := headWindow(buf, maxBytes, true)
	if !ok {
		return 0, incompleteOrTooLarge(ErrIncomplete, buf, maxBytes)
	}
	b := window[start:]

	// Syntax pass over the bytes: request line, then field lines up to the empty line.
	var spans fieldSpans
	mEnd, ts, te, proto, err := scanRequestLine(b)
	var end, count int
	if err == nil {
		end, count, err = scanFields(b, te+11, lim.maxCount(), &spans)
	}
	if err != nil {
		return 0, incompleteOrTooLarge(err, buf, maxBytes)
	}

	// Semantic pass over one string copy of the head: every string in req is sliced from s.
	s := string(b[:end])
	old := len(req.Header)
	h := req.Header[:0]
	var fr framing
	err = applyFields(s, te+11, count, &spans, modeRequest, &h, &fr)
	clearTail(h, old)
	*req = httpmsg.Request{
		Method:    s[:mEnd],
		Target:    s[ts:te],
		Proto:     proto,
		Header:    h,
		Host:      fr.host,
		Close:     fr.connClose || (proto == httpmsg.HTTP10 && !fr.connKeepAlive),
		Expect100: proto == httpmsg.HTTP11 && fr.expect100,
	}
	if err != nil {
		return 0, err
	}
	if fr.connUpgrade && proto == httpmsg.HTTP11 {
		req.Upgrade = fr.upgrade
	}
	if fr.hostCount == 0 && proto == httpmsg.HTTP11 {
		return 0, badHost("missing Host field")
	}
	if fr.hostCount > 0 && !validHost(fr.host) {
		return 0, badHost("invalid Host field")
	}
	if err := resolveTarget(req); err != nil {
		return 0, err
	}
	if err := requestFraming(req, &fr, lim.AllowGetBody); err != nil {
		return 0, err
	}
	return start + end, nil
}

// scanRequestLine checks request-line = method SP request-target SP HTTP-version CRLF at the start
// of b and returns the end of the method, the bounds of the target (the version starts at te+1
// and the first field line at te+11) and the version.
func scanRequestLine(b []byte) (mEnd, ts, te int, proto httpmsg.Proto, err error) {
	mEnd = scanToken(b, 0)
	if mEnd == len(b) {
		return 0, 0, 0, 0, ErrIncomplete
	}
	if mEnd == 0 || b[mEnd] != ' ' {
		return 0, 0, 0, 0, badRequestLine("invalid method")
	}
	ts = mEnd + 1
	te = scanTarget(b, ts)
	if te == len(b) {
		return 0, 0, 0, 0, ErrIncomplete
	}
	if te == ts || b[te] != ' ' {
		return 0, 0, 0, 0, badRequestLine("invalid request-target")
	}
	proto, err = scanVersion(b, te+1)
	return mEnd, ts, te, proto, err
}

// resolveTarget checks the request-target form against the method and fills Path, Query and (for
// absolute-form and authority-form) Host.
func resolveTarget(req *httpmsg.Request) error {
	t := req.Target
	connect := req.Method == "CONNECT"
	switch {
	case t[0] == '/':
		if connect {
			return badRequestLine("CONNECT needs an authority-form target")
		}
		req.Path, req.Query = splitQuery(t)
		return nil
	case t == "*":
		if req.Method != "OPTIONS" {
			return badRequestLine("asterisk-form target outside OPTIONS")
		}
		req.Path = "*"
		return nil
	case connect:
		// authority-form = uri-host ":" port
		if !validHost(t) || !hasPort(t) {
			return badRequestLine("invalid authority-form target")
		}
		return agreeHost(req, t)
	}
	// absolute-form: only http and https URIs.
	var rest string
	switch {
	case len(t) > 7 && httpmsg.EqualFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && httpmsg.EqualFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return badRequestLine("invalid request-target")
	}
	a := 0
	for a < len(rest) && rest[a] != '/' && rest[a] != '?' {
		a++
	}
	authority := rest[:a]
	if indexByte(authority, '@') >= 0 {
		return badRequestLine("userinfo in request-target")
	}
	if !validHost(authority) {
		return badRequestLine("invalid authority in request-target")
	}
	if err := agreeHost(req, authority); err != nil {
		return err
	}
	req.Path, req.Query = splitQuery(rest[a:])
	if req.Path == "" {
		req.Path = "/"
		if req.Method == "OPTIONS" {
			req.Path = "*" // RFC 9112 section 3.2.4
		}
	}
	return nil
}

// agreeHost makes authority the request's Host, refusing a Host field that names another one.
func agreeHost(req *httpmsg.Request, authority string) error {
	if req.Host != "" && !httpmsg.EqualFold(req.Host, authority) {
		return badHost("Host field disagrees with request-target authority")
	}
	req.Host = authority
	return nil
}

func splitQuery(t string) (path, query string) {
	if i := indexByte(t, '?'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return t, ""
}

// requestFraming settles the body framing of a request.
func requestFraming(req *httpmsg.Request, fr *framing, allowGetBody bool) error {
	switch {
	case fr.teCount > 0:
		if fr.clCount > 0 {
			return ambiguous("both Content-Length and Transfer-Encoding")
		}
		if req.Proto == httpmsg.HTTP10 {
			return ambiguous("Transfer-Encoding in an HTTP/1.0 message")
		}
		if err := checkTransferEncoding(fr.te); err != nil {
			return err
		}
		req.Chunked = true
		req.ContentLength = -1
	case fr.clCount > 0:
		req.ContentLength = fr.cl
	}
	if !allowGetBody && (req.Chunked || req.ContentLength > 0) && (req.Method == "GET" || req.Method == "HEAD") {
		return perr(400, ReasonBodyNotAllowed, "body on a GET or HEAD request")
	}
	return nil
}

// validHost reports whether s is uri-host [ ":" port ]: a reg-name or IPv4 address, or an IPv6
// literal in brackets, with an optional port of 1 to 5 digits no greater than 65535. An empty host
// or an empty port is refused.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '[' {
		j := indexByte(s, ']')
		if j < 3 { // at least "[::]"
			return false
		}
		for k := 1; k < j; k++ {
			if c := s[k]; unhex(c) < 0 && c != ':' && c != '.' {
				return false
			}
		}
		i = j + 1
	} else {
		for i < len(s) && regNameChar[s[i]] {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(s) {
		return true
	}
	if s[i] != ':' {
		return false
	}
	return validPort(s[i+1:])
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if !isDigit(p[i]) {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// hasPort reports whether a valid host s ends in ":" port.
func hasPort(s string) bool {
	i := len(s) - 1
	for i >= 0 && isDigit(s[i]) {
		i--
	}
	return i >= 0 && i < len(s)-1 && s[i] == ':' && (s[0] != '[' || (i > 0 && s[i-1] == ']'))
}
