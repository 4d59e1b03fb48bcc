package flagwire

import (
	"log/slog"
	"sync"
	"time"
)

// logLimiter logs each kind of problem at most once per interval, so an
// outage produces a line a minute, not one per call ("avoid alert storms").
// It never holds its lock while logging.
type logLimiter struct {
	logger   *slog.Logger
	interval time.Duration
	clock    clock

	mu         sync.Mutex
	last       map[string]int64
	suppressed map[string]int
}

func (l *logLimiter) init(logger *slog.Logger, interval time.Duration, cl clock) {
	l.logger, l.interval, l.clock = logger, interval, cl
	l.last = make(map[string]int64)
	l.suppressed = make(map[string]int)
}

// warn logs msg under kind unless kind was logged within the interval.
// args must never contain tokens or attribute values.
func (l *logLimiter) warn(kind, msg string, args ...any) {
	now := l.clock.Nanotime()
	l.mu.Lock()
	last, seen := l.last[kind]
	if seen && now-last < int64(l.interval) {
		l.suppressed[kind]++
		l.mu.Unlock()
		return
	}
	l.last[kind] = now
	n := l.suppressed[kind]
	l.suppressed[kind] = 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	l.logger.Warn(msg, args...)
}
