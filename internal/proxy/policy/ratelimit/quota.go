package ratelimit

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgate/meshgate/internal/config"
	"github.com/meshgate/meshgate/internal/proxy"
	"github.com/meshgate/meshgate/internal/proxy/httpmsg"
)

// quotaScript counts one request against KEYS[1] and returns the new count; the key expires at
// ARGV[1] (Unix seconds), a day after its period ends.
const quotaScript = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return n`

// maxQuotaConsumers bounds the consumers a quota remembers as exhausted for the period.
const maxQuotaConsumers = 100000

// Quota counts each consumer's requests per calendar period (UTC day or month) of one plan in
// Redis, so that every replica agrees. Requests over the limit get 429 with reason
// "quota_exceeded" and a Retry-After that points at the next period. A consumer found exhausted
// is remembered until the period ends, so its further requests cost no Redis round trip. It is
// safe for concurrent use.
type Quota struct {
	plan     string
	limit    int64
	period   string
	timeout  time.Duration
	failOpen bool
	client   *redisClient
	script   *redis.Script
	now      func() time.Time

	mu        sync.Mutex
	exhausted map[string]time.Time // consumer -> end of the period it used up
}

// Quota returns the quota of plan, defaulted and valid. Like Limiter, an equal policy for the
// same plan returns the same *Quota across reloads. Its Redis client is shared with limits on the
// same server; Retain keeps it while the plan is named.
func (s *Store) Quota(plan string, q *config.Quota) (*Quota, error) {
	if q == nil || q.Limit < 1 || q.Redis == "" || q.Timeout <= 0 || (q.Period != config.QuotaDay && q.Period != config.QuotaMonth) {
		return nil, fmt.Errorf("ratelimit: plan %q: a quota needs redis, a limit of at least 1, a timeout and a period of day or month", plan)
	}
	key, password, err := s.redisKey(q.Redis, q.DB, q.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: plan %q: %w", plan, err)
	}
	fp := fmt.Sprintf("%d|%s|%v|%v|%v", q.Limit, q.Period, q.Timeout, q.FailOpen, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	name := "quota:" + plan
	s.requested[name] = true
	if old := s.quotas[name]; old != nil && old.fp == fp {
		return old.q, nil
	}
	qt := &Quota{plan: plan, limit: q.Limit, period: q.Period, timeout: q.Timeout, failOpen: q.FailOpen,
		client: s.client(key, password), script: redis.NewScript(quotaScript), now: time.Now, exhausted: map[string]time.Time{}}
	s.quotas[name] = &storedQuota{q: qt, fp: fp}
	return qt, nil
}

// storedQuota is a quota and the fingerprint of its policy.
type storedQuota struct {
	q  *Quota
	fp string
}

// periodOf returns the id of the period t falls in ("2026-11-26" or "2026-11") and its end.
func (q *Quota) periodOf(t time.Time) (string, time.Time) {
	t = t.UTC()
	if q.period == config.QuotaMonth {
		start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start.Format("2006-01"), start.AddDate(0, 1, 0)
	}
	start := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return start.Format("2006-01-02"), start.AddDate(0, 0, 1)
}

// Serve counts x against its consumer's quota and hands it to next, or answers it. Anonymous
// requests are not counted.
func (q *Quota) Serve(x *proxy.Exchange, next proxy.Handler) error {
	consumer := consumerOf(x)
	if consumer == "" {
		return next.Serve(x)
	}
	now := q.now()
	id, end := q.periodOf(now)
	q.mu.Lock()
	until, known := q.exhausted[consumer]
	q.mu.Unlock()
	if known && now.Before(until) {
		return q.reject(x, end.Sub(now))
	}
	n, err := q.count(x, consumer, id, end)
	if err != nil {
		if q.failOpen {
			return next.Serve(x)
		}
		return proxy.Fail(503, proxy.ReasonQuotaDown, err)
	}
	if n > q.limit {
		q.mu.Lock()
		if len(q.exhausted) >= maxQuotaConsumers {
			clear(q.exhausted)
		}
		q.exhausted[consumer] = end
		q.mu.Unlock()
		return q.reject(x, end.Sub(now))
	}
	remaining := strconv.FormatInt(q.limit-n, 10)
	x.ResponseEdits = append(x.ResponseEdits, func(r *httpmsg.Response) {
		r.Header.Set("X-Quota-Limit", strconv.FormatInt(q.limit, 10))
		r.Header.Set("X-Quota-Remaining", remaining)
	})
	return next.Serve(x)
}

// count adds one request of consumer in period id to Redis and returns the count.
func (q *Quota) count(x *proxy.Exchange, consumer, id string, end time.Time) (int64, error) {
	ctx, cancel := x.CallContext(q.timeout)
	defer cancel()
	key := redisKey(redisKeyPrefix("quota:"+q.plan), keySpec{kind: keyConsumer}, consumer) + ":" + id
	n, err := q.script.Run(ctx, q.client.c, []string{key}, end.Add(24*time.Hour).Unix()).Int64()
	if err != nil {
		if ctx.Err() == nil || x.Ctx == nil || x.Ctx.Err() == nil {
			q.client.failed(err)
		}
		return 0, fmt.Errorf("ratelimit: quota of plan %q: redis %s: %w", q.plan, q.client.key.addr, err)
	}
	q.client.succeeded()
	return n, nil
}

// reject answers 429 quota_exceeded, asking the client to come back when the period ends.
func (q *Quota) reject(x *proxy.Exchange, wait time.Duration) error {
	return proxy.Respond(x, 429, proxy.ReasonQuotaExceeded, "text/plain; charset=utf-8", "429 "+proxy.ReasonQuotaExceeded+"\n",
		httpmsg.Field{Name: "Retry-After", Value: strconv.FormatInt(ceilSeconds(wait), 10)},
		httpmsg.Field{Name: "X-Quota-Limit", Value: strconv.FormatInt(q.limit, 10)},
		httpmsg.Field{Name: "X-Quota-Remaining", Value: "0"})
}
