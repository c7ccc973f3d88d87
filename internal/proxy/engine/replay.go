package engine

import (
	"errors"
	"io"
	"sync"
)

// recordedBody streams a request body of unknown length (chunked HTTP/1, HTTP/2 without a
// length, every gRPC call) to the first attempt as it arrives, keeping a copy of what was read,
// up to a limit, so that a retry can send it again and then go on with the rest. Buffering the
// whole body first would hold a streaming call (a gRPC stream sends its messages only as it
// gets answers) forever.
type recordedBody struct {
	mu       sync.Mutex
	src      io.Reader
	buf      *[]byte // what was read so far; nil after overflow
	limit    int
	overflow bool
	attempt  *attemptBody // the reader of the current attempt
}

// errAttemptOver ends the reads of an attempt that a newer attempt replaced.
var errAttemptOver = errors.New("engine: the request body moved to a newer attempt")

func newRecordedBody(src io.Reader, limit int) *recordedBody {
	bp := replayBufs.get(limit + 1)
	*bp = (*bp)[:0]
	return &recordedBody{src: src, buf: bp, limit: limit}
}

// next returns the body for a new attempt: what was recorded, then the rest of the source.
// It reports false when the body outgrew the limit, so the attempt cannot be made.
func (r *recordedBody) next() (io.Reader, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overflow {
		return nil, false
	}
	if r.attempt != nil {
		r.attempt.over = true
	}
	r.attempt = &attemptBody{r: r}
	return r.attempt, true
}

// replayable reports whether everything read so far is still recorded.
func (r *recordedBody) replayable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.overflow
}

// release returns the buffer to the pool.
func (r *recordedBody) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buf != nil {
		replayBufs.put(r.buf)
		r.buf = nil
	}
	if r.attempt != nil {
		r.attempt.over = true
	}
}

// attemptBody is one attempt's view of a recorded body.
type attemptBody struct {
	r    *recordedBody
	pos  int
	over bool
}

func (a *attemptBody) Read(p []byte) (int, error) {
	r := a.r
	r.mu.Lock()
	if a.over {
		r.mu.Unlock()
		return 0, errAttemptOver
	}
	if !r.overflow && r.buf != nil && a.pos < len(*r.buf) {
		n := copy(p, (*r.buf)[a.pos:])
		a.pos += n
		r.mu.Unlock()
		return n, nil
	}
	r.mu.Unlock()
	// Reading the source outside the lock: a stream may wait long for its next message. Only
	// the current attempt reads it (a replaced attempt stops above).
	n, err := r.src.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 && !r.overflow && r.buf != nil {
		if len(*r.buf)+n > r.limit {
			r.overflow = true
		} else {
			*r.buf = append(*r.buf, p[:n]...)
		}
	}
	a.pos += n
	return n, err
}
