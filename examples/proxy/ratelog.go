package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/bevgo/bev/conn"
)

// acceptLogEvery is how often at most the proxy logs the listener's
// accept errors: under EMFILE the listener retries up to every 5 ms, and
// a line each time would flood the log while saying nothing new.
const acceptLogEvery = time.Second

// rateLog logs at most one line per interval; the lines it holds back
// are counted and the count goes with the next line it lets through.
type rateLog struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time // time.Now; tests set their own

	mu         sync.Mutex // guards following
	last       time.Time  // when the last line was logged; zero: never
	suppressed int        // lines held back since
}

func newRateLog(log *slog.Logger, every time.Duration) *rateLog {
	return &rateLog{log: log, every: every, now: time.Now}
}

// acceptError is the listener's ListenerConfig.OnError: an accept error
// it retries (WARN) or a panic in the accept callback (ERROR), logged at
// most once per interval.
func (l *rateLog) acceptError(err error) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	level, msg := slog.LevelWarn, "accept failed, retrying"
	if errors.Is(err, conn.ErrAcceptPanic) {
		level, msg = slog.LevelError, "accept callback panicked; connection closed"
	}
	l.log.Log(context.Background(), level, msg, "err", err, "suppressed", n)
}
