package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
)

// RedisLog adapts a *slog.Logger to the logging interface of the Redis client library, whose own
// messages (failed dials, mostly) otherwise go to standard error. The library keeps one logger per
// process: install it once at start-up with redis.SetLogger(ratelimit.RedisLog{Logger: log}).
// Messages are logged at debug level; the limiters themselves log at warning level when Redis
// stops answering and at info level when it answers again.
type RedisLog struct {
	// Logger receives the messages.
	Logger *slog.Logger
}

// Printf logs one message of the Redis client library.
func (l RedisLog) Printf(ctx context.Context, format string, v ...any) {
	if l.Logger.Enabled(ctx, slog.LevelDebug) {
		l.Logger.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
	}
}
