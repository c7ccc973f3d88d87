package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/http1"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// forwardUpgrade tunnels an Upgrade request (WebSocket and the like) on a connection of its own:
// when the upstream answers 101 both connections are joined byte for byte until either side ends.
func (t *HTTP1) forwardUpgrade(x *proxy.Exchange, p *connPool) error {
	x.UpstreamStart = time.Now()
	uc, err := p.dial(x.Deadline)
	if err != nil {
		return classify(err, true)
	}
	uc.dl.Set(uc.c, x.Deadline)
	uc.bw.Write(appendRequest(uc.bw.AvailableBuffer(), x))
	if x.Body != nil && x.Req.ContentLength > 0 {
		if err := writeBody(uc.bw, x, nil); err != nil {
			uc.close()
			if de, ok := asDownstream(err); ok {
				return de
			}
			return classify(err, false)
		}
	}
	if err := uc.bw.Flush(); err != nil {
		uc.close()
		return classify(err, false)
	}
	var resp httpmsg.Response
	if _, err := readResponseHead(uc.br, t.limits, x.Req.Method, &resp); err != nil {
		uc.close()
		return asResponseError(err)
	}
	if resp.Status != 101 {
		resp.Close = true // never pool a connection that carried an upgrade offer
		return t.relay(x, uc, &resp)
	}
	upgrade := resp.Header.Value("Upgrade")
	http1.StripHopByHop(&resp.Header, false)
	for _, edit := range x.ResponseEdits {
		edit(&resp)
	}
	proxy.EchoRequestID(x, &resp)
	resp.Header.Add("Connection", "Upgrade")
	resp.Header.Add("Upgrade", upgrade)
	x.Status = 101
	if err := x.W.WriteHead(&resp); err != nil {
		uc.close()
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	if err := x.W.Flush(); err != nil {
		uc.close()
		return proxy.Fail(499, proxy.ReasonDownstreamReset, err)
	}
	dc, dbr, err := x.W.Hijack()
	if err != nil {
		uc.close()
		return proxy.Fail(502, proxy.ReasonUpgradeFailed, err)
	}
	uc.dl.Set(uc.c, time.Time{})
	_ = dc.SetDeadline(time.Time{})
	in, out := tunnel(dc, dbr, uc.c, uc.br)
	x.BytesIn += in
	x.BytesOut += out
	x.UpstreamDuration = time.Since(x.UpstreamStart)
	_ = dc.Close()
	uc.close()
	return nil
}

// tunnel copies bytes both ways until both directions end, half-closing where the transport allows.
// It returns the bytes sent from the client and to the client.
func tunnel(down net.Conn, downBuf *bufio.Reader, up net.Conn, upBuf *bufio.Reader) (in, out int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in = pipe(up, downBuf)
		closeWrite(up)
	}()
	out = pipe(down, upBuf)
	closeWrite(down)
	wg.Wait()
	return in, out
}

func pipe(dst net.Conn, src io.Reader) int64 {
	n, err := io.Copy(dst, src)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		// A reset on one side ends the tunnel: unblock the other direction.
		_ = dst.Close()
	}
	return n
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Close()
}
