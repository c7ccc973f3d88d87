package http1

import (
	"strconv"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// AppendRequestHead appends an HTTP/1.1 request head for req to dst and returns the extended
// slice. The request line is Method, then req.Path plus "?" and req.Query when Query is not empty
// ("/" when Path is empty; req.Host for CONNECT), then "HTTP/1.1". A "Host: req.Host" line comes
// first when Host is not empty, then every field of req.Header in order except fields named Host,
// then the final CRLF. It writes no framing fields of its own and does not validate: callers put
// Content-Length or Transfer-Encoding in the Header (or append them before the final CRLF) and check
// untrusted names and values with ValidFieldName and ValidFieldValue. A Header filled by
// ParseRequest still holds the client's Content-Length (StripHopByHop removes Transfer-Encoding);
// a caller that writes its own framing deletes it first, or the field goes out twice. It does not
// allocate when dst has room.
func AppendRequestHead(dst []byte, req *httpmsg.Request) []byte {
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	switch {
	case req.Method == "CONNECT":
		dst = append(dst, req.Host...)
	case req.Path == "":
		dst = append(dst, '/')
	default:
		dst = append(dst, req.Path...)
	}
	if req.Query != "" && req.Method != "CONNECT" {
		dst = append(dst, '?')
		dst = append(dst, req.Query...)
	}
	dst = append(dst, " HTTP/1.1\r\n"...)
	if req.Host != "" {
		dst = append(dst, "Host: "...)
		dst = append(dst, req.Host...)
		dst = append(dst, '\r', '\n')
	}
	for i := range req.Header {
		f := &req.Header[i]
		if len(f.Name) == 4 && httpmsg.EqualFold(f.Name, "host") {
			continue
		}
		dst = appendField(dst, f.Name, f.Value)
	}
	return append(dst, '\r', '\n')
}

// AppendResponseHead appends an HTTP/1.1 response head for resp to dst and returns the extended
// slice: the status line (resp.Reason, or the standard reason phrase when Reason is empty), every
// field of resp.Header in order, and the final CRLF. Like AppendRequestHead it adds no framing
// fields, does not validate and does not allocate when dst has room.
func AppendResponseHead(dst []byte, resp *httpmsg.Response) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(resp.Status), 10)
	dst = append(dst, ' ')
	if resp.Reason != "" {
		dst = append(dst, resp.Reason...)
	} else {
		dst = append(dst, StatusText(resp.Status)...)
	}
	dst = append(dst, '\r', '\n')
	for i := range resp.Header {
		f := &resp.Header[i]
		dst = appendField(dst, f.Name, f.Value)
	}
	return append(dst, '\r', '\n')
}

func appendField(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, value...)
	return append(dst, '\r', '\n')
}

// StatusText returns the standard reason phrase for an HTTP status code (RFC 9110 and the common
// registered extensions), or "" for an unknown code.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 208:
		return "Already Reported"
	case 226:
		return "IM Used"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 305:
		return "Use Proxy"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 418:
		return "I'm a teapot"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 423:
		return "Locked"
	case 424:
		return "Failed Dependency"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 506:
		return "Variant Also Negotiates"
	case 507:
		return "Insufficient Storage"
	case 508:
		return "Loop Detected"
	case 510:
		return "Not Extended"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
