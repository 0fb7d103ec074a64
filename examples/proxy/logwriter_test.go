package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// writes records each Write the logWriter makes, as one string.
type writes struct {
	mu  sync.Mutex
	got []string
	err error // returned by every Write when set
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	w.got = append(w.got, string(p))
	return len(p), nil
}

func (w *writes) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got...)
}

// INFO lines wait up to -log-flush and go out in one write; nothing is
// written before.
func TestLogWriterGathersLines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var w writes
		lw := newLogWriter(&w, 100*time.Millisecond)
		defer lw.Close()
		for _, line := range []string{"a\n", "b\n", "c\n"} {
			lw.Write([]byte(line))
			time.Sleep(20 * time.Millisecond)
		}
		synctest.Wait()
		if got := w.all(); len(got) != 0 {
			t.Fatalf("written after 60 ms: %q, want nothing before 100 ms", got)
		}
		time.Sleep(40 * time.Millisecond) // 100 ms after the first line
		synctest.Wait()
		if got := w.all(); len(got) != 1 || got[0] != "a\nb\nc\n" {
			t.Fatalf("written at 100 ms: %q, want the three lines in one write", got)
		}
		lw.Write([]byte("d\n")) // the timer starts again for the next line
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if got := w.all(); len(got) != 2 || got[1] != "d\n" {
			t.Fatalf("written: %q, want d 100 ms after it came", got)
		}
	})
}

// Lines that fill the buffer are written at once; with -log-flush 0 each
// line is.
func TestLogWriterFullOrUnbuffered(t *testing.T) {
	var w writes
	lw := newLogWriter(&w, time.Hour)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	for range logBufferMax / len(line) {
		lw.Write(line)
	}
	if got := w.all(); len(got) != 1 || len(got[0]) != logBufferMax {
		t.Errorf("after %d bytes of lines: %d writes, want one of them all", logBufferMax, len(got))
	}
	lw.Close()

	var u writes
	lw = newLogWriter(&u, 0)
	lw.Write([]byte("a\n"))
	lw.Write([]byte("b\n"))
	if got := u.all(); len(got) != 2 {
		t.Errorf("-log-flush 0: writes %q, want each line at once", got)
	}
	lw.Close()
}

// A WARN line is written at once, after the INFO lines before it; Close
// writes what waits, and later lines go straight through.
func TestLogWriterWarnAndClose(t *testing.T) {
	var w writes
	lw := newLogWriter(&w, time.Hour)
	log := slog.New(urgentFlush{slog.NewTextHandler(lw, nil), lw}).With("conn", 1)
	log.Info("closed")
	if got := w.all(); len(got) != 0 {
		t.Fatalf("INFO line written at once: %q", got)
	}
	log.Warn("unreachable")
	got := w.all()
	if len(got) != 1 || !strings.Contains(got[0], "msg=closed conn=1") || !strings.HasSuffix(got[0], "msg=unreachable conn=1\n") {
		t.Fatalf("after a WARN: %q, want the INFO line then the WARN line, in one write", got)
	}
	log.Info("late")
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	log.Info("after close")
	got = w.all()
	if len(got) != 3 || !strings.Contains(got[1], "msg=late") || !strings.Contains(got[2], `msg="after close"`) {
		t.Errorf("writes %q, want Close to write the waiting line and later ones to go at once", got)
	}
}

// A failing writer's error is kept: the lines after it are dropped, and
// Flush, Close and every Write return it.
func TestLogWriterError(t *testing.T) {
	broken := errors.New("disk full")
	w := writes{err: broken}
	lw := newLogWriter(&w, time.Hour)
	if _, err := lw.Write([]byte("a\n")); err != nil {
		t.Fatalf("a buffered Write failed: %v", err)
	}
	if err := lw.Flush(); !errors.Is(err, broken) {
		t.Errorf("Flush = %v, want %v", err, broken)
	}
	if _, err := lw.Write([]byte("b\n")); !errors.Is(err, broken) {
		t.Errorf("Write after the failure = %v, want %v", err, broken)
	}
	h := urgentFlush{slog.NewTextHandler(lw, nil), lw}
	if err := h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelWarn, "x", 0)); !errors.Is(err, broken) {
		t.Errorf("Handle of a WARN = %v, want %v", err, broken)
	}
	if err := lw.Close(); !errors.Is(err, broken) {
		t.Errorf("Close = %v, want %v", err, broken)
	}
}

// The proxy's connection line comes within -log-flush while it runs, and
// every line is written when it exits.
func TestLogFlushWhileRunning(t *testing.T) {
	target := serveHTTP(t, bodyHandler([]byte("hello")), nil)
	p := startProxy(t, "-target", target, "-log-flush", "50ms")
	if got, _ := curl(t, "http://"+p.addr+"/file"); !bytes.Equal(got, []byte("hello")) {
		t.Fatalf("curl got %q", got)
	}
	p.errOut.waitFor(t, regexp.MustCompile(`level=INFO msg=closed conn=1 `), 10*time.Second)
	p.stop(t)
}
