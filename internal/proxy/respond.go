package proxy

import (
	"strconv"

	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// Respond writes a complete response that meshgate generated itself: status, the reason header,
// the request id, optional extra fields and a small body. It records status and reason on x.
func Respond(x *Exchange, status int, reason, contentType, body string, extra ...httpmsg.Field) error {
	x.Status = status
	x.Reason = reason
	resp := httpmsg.Response{Status: status, ContentLength: int64(len(body))}
	h := make(httpmsg.Header, 0, 4+len(extra))
	h = append(h, httpmsg.Field{Name: ReasonHeader, Value: reason})
	if contentType != "" {
		h = append(h, httpmsg.Field{Name: "Content-Type", Value: contentType})
	}
	if x.ID != "" {
		h = append(h, httpmsg.Field{Name: "X-Request-Id", Value: x.ID})
	}
	h = append(h, extra...)
	resp.Header = h
	if x.LocalReplyEdit != nil {
		x.LocalReplyEdit(&resp)
	}
	if !httpmsg.BodyAllowed(x.Req.Method, status) {
		body = ""
	}
	if err := x.W.WriteHead(&resp); err != nil {
		return err
	}
	if body != "" {
		n, err := x.W.Write([]byte(body))
		x.BytesOut += int64(n)
		if err != nil {
			return err
		}
	}
	return x.W.Finish(nil)
}

// RespondError answers x with the response err deserves: its status, its reason code in the reason
// header and as the body. It does nothing but record the reason when a head was already sent.
func RespondError(x *Exchange, err error) error {
	e := AsError(err)
	x.Err = err
	if x.W.HeadWritten() {
		if x.Reason == "" {
			x.Reason = e.Reason
		}
		return err
	}
	var extra []httpmsg.Field
	if e.Status == 503 || e.Status == 429 {
		extra = append(extra, httpmsg.Field{Name: "Cache-Control", Value: "no-store"})
	}
	if e.Status >= 400 && e.Status < 500 && e.Status != 404 && e.Status != 429 {
		// A malformed request leaves the connection in an unknown state.
		extra = append(extra, httpmsg.Field{Name: "Connection", Value: "close"})
	}
	return Respond(x, e.Status, e.Reason, "text/plain; charset=utf-8", strconv.Itoa(e.Status)+" "+e.Reason+"\n", extra...)
}

// EchoRequestID adds the request id to an upstream response at the edge, so that a client can
// name the request to `meshgate explain`; an id the upstream set is kept.
func EchoRequestID(x *Exchange, resp *httpmsg.Response) {
	if x.AtEdge && x.ID != "" && !resp.Header.Has("X-Request-Id") {
		resp.Header = append(resp.Header, httpmsg.Field{Name: "X-Request-Id", Value: x.ID})
	}
}
