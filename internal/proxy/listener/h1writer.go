package listener

import (
	"bufio"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// responseGrace is the least time a response head is given to be written, even when the exchange's
// deadline has passed.
const responseGrace = time.Second

var (
	errHeadTwice     = errors.New("listener: response head written twice")
	errNoHead        = errors.New("listener: body written before the response head")
	errBodyTooLong   = errors.New("listener: response body longer than its Content-Length")
	errBodyNotAllowd = errors.New("listener: response to this request cannot have a body")
)

// h1Writer writes one HTTP/1 response. It owns framing: Content-Length when the length is known,
// chunked for HTTP/1.1 otherwise, and close-delimited for HTTP/1.0 clients.
type h1Writer struct {
	hc         *h1Conn
	req        *httpmsg.Request
	head       bool
	noBody     bool
	chunked    bool
	remaining  int64 // -1 when not length-delimited
	closeAfter bool
	finished   bool
	hijacked   bool
	cw         *http1.ChunkedWriter
}

var _ proxy.ResponseWriter = (*h1Writer)(nil)

func (w *h1Writer) reset(hc *h1Conn, req *httpmsg.Request) {
	*w = h1Writer{hc: hc, req: req, remaining: -1}
}

// WriteHead implements proxy.ResponseWriter.
func (w *h1Writer) WriteHead(resp *httpmsg.Response) error {
	if w.head {
		return errHeadTwice
	}
	st := resp.Status
	informational := st >= 100 && st < 200 && st != 101
	if !informational {
		w.head = true
	}
	resp.Proto = httpmsg.HTTP11
	isHead := w.req.Method == "HEAD"
	if !informational {
		// The route may have changed the exchange's deadline since the head was read. When it is
		// (nearly) over, the response is usually the 504 saying so: give it a short, bounded
		// window to reach the client.
		d := w.hc.x.Deadline
		if !d.IsZero() {
			if floor := time.Now().Add(responseGrace); d.Before(floor) {
				d = floor
			}
		}
		w.hc.dl.SetWrite(w.hc.c, d)
		if httpmsg.HasToken(resp.Header.Value("Connection"), "close") {
			w.closeAfter = true
		}
	}
	// Framing fields are ours to write; a HEAD response keeps the Content-Length it reports, and a
	// 101 keeps the Connection and Upgrade fields that complete the protocol switch.
	resp.Header.Del("Transfer-Encoding")
	if st != 101 {
		resp.Header.Del("Connection")
	}
	if !isHead {
		resp.Header.Del("Content-Length")
	}
	buf := http1.AppendResponseHead(w.hc.bw.AvailableBuffer(), resp)
	buf = buf[:len(buf)-2]
	switch {
	case informational:
	case st == 101:
		// The upgrade fields were set by the caller.
	case !httpmsg.BodyAllowed(w.req.Method, st):
		w.noBody = true
	case resp.ContentLength >= 0:
		buf = append(buf, "Content-Length: "...)
		buf = strconv.AppendInt(buf, resp.ContentLength, 10)
		buf = append(buf, "\r\n"...)
		w.remaining = resp.ContentLength
	case w.req.Proto == httpmsg.HTTP11:
		buf = append(buf, "Transfer-Encoding: chunked\r\n"...)
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the body ends when the connection does
	}
	if !informational && st != 101 {
		if w.req.Close || w.closeAfter || w.hc.l.closing.Load() {
			w.closeAfter = true
			buf = append(buf, "Connection: close\r\n"...)
		} else if w.req.Proto == httpmsg.HTTP10 {
			buf = append(buf, "Connection: keep-alive\r\n"...)
		}
	}
	buf = append(buf, "\r\n"...)
	_, err := w.hc.bw.Write(buf)
	if informational {
		if err == nil {
			err = w.hc.bw.Flush()
		}
		return err
	}
	if w.chunked {
		w.cw = http1.NewChunkedWriter(w.hc.bw)
	}
	return err
}

// Write implements proxy.ResponseWriter.
func (w *h1Writer) Write(p []byte) (int, error) {
	if !w.head {
		return 0, errNoHead
	}
	if w.noBody {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, errBodyNotAllowd
	}
	if w.chunked {
		return w.cw.Write(p)
	}
	if w.remaining >= 0 {
		if int64(len(p)) > w.remaining {
			w.closeAfter = true
			return 0, errBodyTooLong
		}
		w.remaining -= int64(len(p))
	}
	return w.hc.bw.Write(p)
}

// Flush implements proxy.ResponseWriter.
func (w *h1Writer) Flush() error { return w.hc.bw.Flush() }

// Finish implements proxy.ResponseWriter.
func (w *h1Writer) Finish(trailer httpmsg.Header) error {
	if !w.head {
		return errNoHead
	}
	if w.finished {
		return nil
	}
	w.finished = true
	if w.chunked {
		if err := w.cw.CloseWithTrailer(trailer); err != nil {
			return err
		}
	} else if w.remaining > 0 {
		// The body ended short of its declared length: the client must see the connection close.
		w.closeAfter = true
		w.finished = false
	}
	return w.hc.bw.Flush()
}

// HeadWritten implements proxy.ResponseWriter.
func (w *h1Writer) HeadWritten() bool { return w.head }

// Hijack implements proxy.ResponseWriter.
func (w *h1Writer) Hijack() (net.Conn, *bufio.Reader, error) {
	if err := w.hc.bw.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	w.hc.l.setIdle(w.hc.state, false)
	return w.hc.c, w.hc.br, nil
}
