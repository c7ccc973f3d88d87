package listener

import (
	"golang.org/x/net/http2"
)

// dispatch handles one frame read from the client. A returned http2.StreamError resets that
// stream; any other error ends the connection.
func (c *h2Conn) dispatch(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.onHeaders(f)
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.mu.Lock()
		err := c.fr.WritePing(true, f.Data)
		c.mu.Unlock()
		return err
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeProtocol}
		}
		return nil // priorities are advisory; meshgate serves streams as they come
	case *http2.GoAwayFrame:
		c.mu.Lock()
		c.goAway = true // the client opens no more streams; finish the open ones
		c.mu.Unlock()
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // clients cannot push
	case *http2.ContinuationFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol) // the Framer joins valid ones
	}
	return nil // unknown frame types are ignored (RFC 9113 §4.1)
}

// onSettings applies the client's settings, in order, and acknowledges them.
func (c *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingHeaderTableSize:
			c.henc.SetMaxDynamicTableSize(min(s.Val, h2MaxTableSize))
		case http2.SettingInitialWindowSize:
			// A change applies to every open stream's window (RFC 9113 §6.9.2).
			delta := int64(s.Val) - int64(c.peerWindow)
			for _, st := range c.streams {
				w := st.sendWindow + delta
				if w > h2MaxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
				st.sendWindow = w
			}
			c.peerWindow = int32(s.Val)
			c.wakeWritersLocked()
		case http2.SettingMaxFrameSize:
			c.peerFrameSize = s.Val
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.fr.WriteSettingsAck()
}

// onWindowUpdate widens the connection's or a stream's send window.
func (c *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > h2MaxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.wakeWritersLocked()
		return nil
	}
	if f.StreamID > c.maxStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	st := c.streams[f.StreamID]
	if st == nil || st.resetSent {
		return nil // a closed stream: the update may have crossed its end
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > h2MaxWindow {
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	c.wakeWritersLocked()
	return nil
}

// onReset ends a stream the client cancelled.
func (c *h2Conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	if st := c.streams[f.StreamID]; st != nil {
		st.resetSent = true // nothing more may be sent on it
		st.abortLocked(errH2StreamReset)
		c.wakeWritersLocked()
		c.forgetLocked(st)
	}
	return nil
}

// onData delivers request body bytes to their stream, enforcing flow control.
func (c *h2Conn) onData(f *http2.DataFrame) error {
	n := int32(f.Length) // padding included: it counts against the windows too
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID > c.maxStreamID {
		return http2.ConnectionError(http2.ErrCodeProtocol) // an idle stream
	}
	if int64(n) > h2ConnWindow-int64(c.unackedRecv)-c.recvBuffered {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	st := c.streams[f.StreamID]
	if st != nil && st.remoteDone && st.localDone && !st.resetSent {
		return http2.ConnectionError(http2.ErrCodeStreamClosed) // closed both ways (RFC 9113 §5.1)
	}
	if st == nil || st.remoteDone || st.resetSent {
		// Closed, half-closed or reset: the bytes are not wanted, but the connection's window
		// still gets them back.
		c.creditLocked(nil, n)
		if st != nil && st.resetSent {
			return nil // a reset is already on its way
		}
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeStreamClosed}
	}
	if n > st.recvWindow {
		c.creditLocked(nil, n)
		return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
	}
	st.recvWindow -= n
	data := f.Data()
	if pad := n - int32(len(data)); pad > 0 {
		c.creditLocked(st, pad)
	}
	if len(data) > 0 {
		st.body = append(st.body, data...)
		st.received += int64(len(data))
		c.recvBuffered += int64(len(data))
		if st.declared >= 0 && st.received > st.declared {
			return c.malformedLocked(st)
		}
	}
	if f.StreamEnded() {
		if st.declared >= 0 && st.received != st.declared {
			return c.malformedLocked(st)
		}
		st.remoteDone = true
	}
	st.signalLocked()
	return nil
}

// malformedLocked ends a stream whose body disagrees with its content-length (RFC 9113 §8.1.1).
func (c *h2Conn) malformedLocked(st *h2Stream) error {
	st.abortLocked(errBodyLength)
	return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
}

// creditLocked returns n bytes of receive window to the client: on the connection, and on st
// when it is still open. Updates are sent in batches of a quarter window.
func (c *h2Conn) creditLocked(st *h2Stream, n int32) {
	c.unackedRecv += n
	if c.unackedRecv >= h2ConnWindow/4 {
		_ = c.fr.WriteWindowUpdate(0, uint32(c.unackedRecv))
		c.unackedRecv = 0
	}
	if st == nil || st.remoteDone || st.resetSent {
		return
	}
	st.unackedRecv += n
	if st.unackedRecv >= h2StreamWindow/4 {
		_ = c.fr.WriteWindowUpdate(st.id, uint32(st.unackedRecv))
		st.recvWindow += st.unackedRecv
		st.unackedRecv = 0
	}
}

// resetLocked sends RST_STREAM for id and forgets the stream.
func (c *h2Conn) resetLocked(id uint32, code http2.ErrCode) {
	if c.closed {
		return
	}
	st := c.streams[id]
	if st != nil {
		if st.resetSent {
			return
		}
		st.resetSent = true
		st.abortLocked(errH2StreamReset)
		c.wakeWritersLocked()
	}
	_ = c.fr.WriteRSTStream(id, code)
	if st != nil {
		c.forgetLocked(st)
	}
}
