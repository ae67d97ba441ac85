package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisLog routes go-redis's own messages (pool dial failures and the
// like, written with Printf) into the replica's slog logger, so that a
// JSON log stays JSON, with the URL's password redacted.
type redisLog struct {
	log *slog.Logger
	url string
}

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(redact(fmt.Sprintf(format, v...), l.url))
	l.log.WarnContext(ctx, "redis client", "message", msg)
}

// setRedisLog installs l as go-redis's logger. go-redis keeps one logger
// per process (redis.SetLogger), so with several Redis values in one
// process (tests, the fleet benchmark) the last one created receives the
// messages of all of them.
func setRedisLog(log *slog.Logger, url string) {
	redis.SetLogger(redisLog{log: log, url: url})
}
