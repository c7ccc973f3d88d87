// Package accesslog writes one structured JSON line per request through log/slog. Lines go to a
// buffered writer that is flushed on a short timer and on Close, so logging a request costs no
// system call on the request path.
package accesslog

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// FlushInterval is how long a line may wait in the buffer before it is written out.
const FlushInterval = 200 * time.Millisecond

// Entry is what one access log line says about one request.
type Entry struct {
	RequestID        string
	Listener         string
	Route            string
	Service          string
	Endpoint         string
	Method           string
	Host             string
	Path             string
	Proto            string
	Status           int
	Reason           string
	Duration         time.Duration
	UpstreamDuration time.Duration
	BytesIn          int64
	BytesOut         int64
	ClientIP         string
	Attempts         int
	// Consumer is the authenticated consumer, or "".
	Consumer string
	// Authz names the authorization rule that decided, or "".
	Authz string
	Error string
}

// Logger writes access log lines. A nil *Logger discards everything.
type Logger struct {
	log    *slog.Logger
	out    *syncWriter
	closer io.Closer
	stop   chan struct{}
	done   chan struct{}
}

// Open returns a Logger for path: "stdout", "stderr", a file path (appended to), or "off" (nil).
func Open(path string) (*Logger, error) {
	var w io.Writer
	var closer io.Closer
	switch path {
	case "off":
		return nil, nil
	case "", "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, fmt.Errorf("accesslog: %w", err)
		}
		w, closer = f, f
	}
	return New(w, closer), nil
}

// New returns a Logger writing to w; closer (may be nil) is closed by Close.
func New(w io.Writer, closer io.Closer) *Logger {
	sw := &syncWriter{bw: bufio.NewWriterSize(w, 64<<10)}
	l := &Logger{
		log:    slog.New(slog.NewJSONHandler(sw, &slog.HandlerOptions{ReplaceAttr: dropLevel})),
		out:    sw,
		closer: closer,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.flushLoop()
	return l
}

func dropLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		return slog.Attr{}
	}
	if len(groups) == 0 && a.Key == slog.MessageKey {
		return slog.Attr{}
	}
	return a
}

// Log writes one line for e.
func (l *Logger) Log(e *Entry) {
	if l == nil {
		return
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", e.RequestID),
		slog.String("listener", e.Listener),
		slog.String("route", e.Route),
		slog.String("service", e.Service),
		slog.String("endpoint", e.Endpoint),
		slog.String("method", e.Method),
		slog.String("host", e.Host),
		slog.String("path", e.Path),
		slog.String("proto", e.Proto),
		slog.Int("status", e.Status),
		slog.String("reason", e.Reason),
		slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.Float64("upstream_ms", float64(e.UpstreamDuration.Microseconds())/1000),
		slog.Int64("bytes_in", e.BytesIn),
		slog.Int64("bytes_out", e.BytesOut),
		slog.String("client_ip", e.ClientIP),
		slog.Int("attempts", e.Attempts),
		slog.String("consumer", e.Consumer),
		slog.String("authz", e.Authz),
		slog.String("error", e.Error),
	}
	n := len(attrs)
	if e.Error == "" {
		n--
	}
	l.log.LogAttrs(context.Background(), slog.LevelInfo, "", attrs[:n]...)
}

// Close flushes what is buffered, stops the flusher and closes the file, if any.
func (l *Logger) Close() error {
	if l == nil {
		return nil
	}
	close(l.stop)
	<-l.done
	err := l.out.Flush()
	if l.closer != nil {
		if cerr := l.closer.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func (l *Logger) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			_ = l.out.Flush()
		}
	}
}

// syncWriter is a bufio.Writer shared by the request path and the flusher.
type syncWriter struct {
	mu sync.Mutex
	bw *bufio.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	n, err := w.bw.Write(p)
	w.mu.Unlock()
	return n, err
}

func (w *syncWriter) Flush() error {
	w.mu.Lock()
	err := w.bw.Flush()
	w.mu.Unlock()
	return err
}
