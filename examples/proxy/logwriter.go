package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// logBufferMax is the most a logWriter gathers before it writes: about
// 200 connection lines.
const logBufferMax = 32 << 10

// logWriter gathers the proxy's log lines and writes them together, at
// most every seconds after the first one waiting, or once logBufferMax
// bytes wait, or at Flush. A line per connection is the proxy's largest
// cost per connection after the connection itself: written one by one,
// its write(2) costs about as much as formatting it. Lines of WARN and
// above are written at once, with every line before them (urgentFlush),
// so a failure is never late; what is lost if the process dies without
// Close is at most every's worth of INFO and DEBUG lines. With every 0 it
// writes each line as it comes.
type logWriter struct {
	every time.Duration

	mu    sync.Mutex // guards what follows
	w     io.Writer
	buf   []byte
	timer *time.Timer // runs while buf holds lines, made with the first
	err   error       // the first write error, returned by every later call
	done  bool        // Close came: lines go straight to w
}

// newLogWriter returns a logWriter of w that writes at most every after a
// line comes (each line at once if every is 0).
func newLogWriter(w io.Writer, every time.Duration) *logWriter {
	return &logWriter{w: w, every: every}
}

// Write takes one line (slog's handlers write each record in one call)
// and returns the first error writing to the underlying writer returned.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0, l.err
	}
	if l.every <= 0 || l.done {
		return l.writeLocked(p)
	}
	waiting := len(l.buf) > 0
	l.buf = append(l.buf, p...)
	switch {
	case len(l.buf) >= logBufferMax:
		l.flushLocked()
	case waiting:
		// The timer runs for the first line waiting.
	case l.timer == nil:
		l.timer = time.AfterFunc(l.every, func() { l.Flush() })
	default:
		l.timer.Reset(l.every)
	}
	return len(p), nil
}

// Flush writes the lines waiting and returns the first write error.
func (l *logWriter) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flushLocked()
}

// Close writes the lines waiting and stops the timer; lines that come
// later are written at once. It returns the first write error.
func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	if l.timer != nil {
		l.timer.Stop()
	}
	return l.flushLocked()
}

func (l *logWriter) flushLocked() error {
	if len(l.buf) > 0 && l.err == nil {
		l.writeLocked(l.buf)
	}
	l.buf = l.buf[:0]
	return l.err
}

func (l *logWriter) writeLocked(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.err = err
	}
	return n, err
}

// urgentFlush is a slog.Handler that flushes its logWriter after each
// record of WARN or above, so that failures are written at once, after
// the lines before them.
type urgentFlush struct {
	slog.Handler
	w *logWriter
}

// Handle hands r to the handler and flushes after a WARN or above; it
// returns the handler's error, else the flush's.
func (h urgentFlush) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.w.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

// WithAttrs returns the handler with attrs, still flushing.
func (h urgentFlush) WithAttrs(attrs []slog.Attr) slog.Handler {
	return urgentFlush{h.Handler.WithAttrs(attrs), h.w}
}

// WithGroup returns the handler with the group, still flushing.
func (h urgentFlush) WithGroup(name string) slog.Handler {
	return urgentFlush{h.Handler.WithGroup(name), h.w}
}
