package http1

import (
	"bufio"
	"errors"
)

// ErrHeadTooLarge is returned by ReadHead when a head does not fit in the reader's buffer.
var ErrHeadTooLarge = errors.New("http1: head larger than the read buffer")

// ReadHead reads one message head from br with parse, which is ParseRequest or ParseResponse bound
// to its arguments. It parses everything buffered, and reads more only while the head is
// incomplete, so one read usually suffices. On success the head is consumed from br. arrived is how
// many bytes of the head had been read when it returned, so a caller can tell a connection that
// closed between messages (0) from one that broke mid-head. When the head outgrows br's buffer it
// returns ErrHeadTooLarge and consumes nothing.
func ReadHead(br *bufio.Reader, parse func(buf []byte) (int, error)) (arrived int, err error) {
	want := max(br.Buffered(), 1)
	for {
		buf, perr := br.Peek(want)
		if len(buf) > 0 {
			n, err := parse(buf)
			if err == nil {
				_, _ = br.Discard(n)
				return n, nil
			}
			if !errors.Is(err, ErrIncomplete) {
				return len(buf), err
			}
		}
		if perr != nil {
			if errors.Is(perr, bufio.ErrBufferFull) {
				return len(buf), ErrHeadTooLarge
			}
			return len(buf), perr
		}
		// Wait for at least one more byte, then take everything that arrived with it. A full
		// buffer means the head cannot fit.
		if _, perr = br.Peek(len(buf) + 1); perr != nil {
			if errors.Is(perr, bufio.ErrBufferFull) {
				return len(buf), ErrHeadTooLarge
			}
			return len(buf), perr
		}
		want = br.Buffered()
	}
}
