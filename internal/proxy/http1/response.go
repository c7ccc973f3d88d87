package http1

import (
	"bytes"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// ParseResponse parses one response head from the start of buf into resp; method is the method of
// the request it answers. It returns ErrIncomplete, a *ParseError (Status 502) or the head length,
// like ParseRequest, and resp never aliases buf. All fields stay in resp.Header in arrival order.
//
// Framing: responses to HEAD, 1xx, 204, 304 and 2xx answers to CONNECT have no body
// (ContentLength 0, whatever Content-Length says); otherwise "Transfer-Encoding: chunked" sets
// Chunked with ContentLength -1, a Content-Length sets ContentLength, and a response with neither
// is delimited by the connection closing (ContentLength -1, Close true). Close is also set for
// "Connection: close" and for HTTP/1.0 without keep-alive. The same framing rules as for requests
// apply: both framing fields, repeated framing fields, or codings other than chunked are refused.
// On error the contents of resp are unspecified.
func ParseResponse(buf []byte, lim Limits, method string, resp *httpmsg.Response) (n int, err error) {
	n, err = parseResponse(buf, lim, method, resp)
	if err != nil && err != ErrIncomplete {
		return 0, asResponseError(err)
	}
	return n, err
}

func parseResponse(buf []byte, lim Limits, method string, resp *httpmsg.Response) (int, error) {
	maxBytes := lim.maxBytes()
	b, _, ok := headWindow(buf, maxBytes, false)
	if !ok {
		return 0, incompleteOrTooLarge(ErrIncomplete, buf, maxBytes)
	}
	var spans fieldSpans
	status, rs, re, proto, err := scanStatusLine(b)
	var end, count int
	first := re + 2
	if err == nil {
		end, count, err = scanFields(b, first, lim.maxCount(), &spans)
	}
	if err != nil {
		return 0, incompleteOrTooLarge(err, buf, maxBytes)
	}

	s := string(b[:end])
	old := len(resp.Header)
	h := resp.Header[:0]
	var fr framing
	err = applyFields(s, first, count, &spans, modeResponse, &h, &fr)
	clearTail(h, old)
	*resp = httpmsg.Response{
		Status: status,
		Reason: s[rs:re],
		Proto:  proto,
		Header: h,
		Close:  fr.connClose || (proto == httpmsg.HTTP10 && !fr.connKeepAlive),
	}
	if err != nil {
		return 0, err
	}

	switch {
	case fr.teCount > 0:
		if fr.clCount > 0 {
			return 0, ambiguous("both Content-Length and Transfer-Encoding")
		}
		if proto == httpmsg.HTTP10 {
			return 0, ambiguous("Transfer-Encoding in an HTTP/1.0 message")
		}
		if err := checkTransferEncoding(fr.te); err != nil {
			return 0, err
		}
		resp.Chunked = true
		resp.ContentLength = -1
	case fr.clCount > 0:
		resp.ContentLength = fr.cl
	default:
		resp.ContentLength = -1
	}
	if !httpmsg.BodyAllowed(method, status) || (method == "CONNECT" && status/100 == 2) {
		resp.Chunked = false
		resp.ContentLength = 0
	} else if resp.ContentLength < 0 && !resp.Chunked {
		resp.Close = true
	}
	return end, nil
}

// scanStatusLine checks status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF at the
// start of b (a missing SP before an empty reason is tolerated) and returns the status, the bounds
// of the reason phrase (the line's CRLF is at re) and the version.
func scanStatusLine(b []byte) (status, rs, re int, proto httpmsg.Proto, err error) {
	if len(b) < 14 {
		if bytes.IndexByte(b, '\n') >= 0 {
			return 0, 0, 0, 0, perr(502, ReasonBadStatusLine, "malformed status line")
		}
		return 0, 0, 0, 0, ErrIncomplete
	}
	proto, ok := parseVersion(b)
	if !ok || b[8] != ' ' {
		return 0, 0, 0, 0, perr(502, ReasonBadStatusLine, "malformed status line")
	}
	if proto == 0 {
		return 0, 0, 0, 0, perr(502, ReasonUnsupportedVersion, "unsupported HTTP version")
	}
	if !isDigit(b[9]) || b[9] == '0' || !isDigit(b[10]) || !isDigit(b[11]) {
		return 0, 0, 0, 0, perr(502, ReasonBadStatusLine, "malformed status code")
	}
	status = int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
	switch b[12] {
	case ' ':
		rs = 13
		re = scanValue(b, rs)
	case '\r': // tolerated: no SP before an empty reason phrase
		rs, re = 12, 12
	default:
		return 0, 0, 0, 0, perr(502, ReasonBadStatusLine, "malformed status line")
	}
	switch {
	case re+1 >= len(b):
		return 0, 0, 0, 0, ErrIncomplete
	case b[re] != '\r' || b[re+1] != '\n':
		return 0, 0, 0, 0, perr(502, ReasonBadStatusLine, "invalid character in status line")
	}
	return status, rs, re, proto, nil
}
