package credential

import (
	"sync"
	"time"
)

// Bounds of the cache of successful basic credential checks.
const (
	// basicCacheTTL is how long a successful check is remembered. A directory is rebuilt when the
	// configuration changes, so a changed or removed credential stops working at once regardless.
	basicCacheTTL = time.Minute
	// basicCacheSize is the most pairs remembered; when full, expired entries are dropped first,
	// then an arbitrary one.
	basicCacheSize = 1024
)

// basicCache remembers successful basic credential checks, keyed by cacheKey.
type basicCache struct {
	mu      sync.Mutex
	entries map[[digestSize]byte]cacheEntry
	size    int
	ttl     time.Duration
	now     func() time.Time
}

// cacheEntry is one remembered check.
type cacheEntry struct {
	consumer *Consumer
	expires  time.Time
}

// newBasicCache returns an empty cache of at most size entries that live for ttl.
func newBasicCache(size int, ttl time.Duration) *basicCache {
	return &basicCache{entries: make(map[[digestSize]byte]cacheEntry), size: size, ttl: ttl, now: time.Now}
}

// get returns the consumer remembered for key, if it has not expired.
func (c *basicCache) get(key [digestSize]byte) (*Consumer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.consumer, true
}

// put remembers consumer for key.
func (c *basicCache) put(key [digestSize]byte, consumer *Consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.size {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.size {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = cacheEntry{consumer: consumer, expires: now.Add(c.ttl)}
}
