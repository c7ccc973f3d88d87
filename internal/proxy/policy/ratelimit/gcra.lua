-- GCRA (the generic cell rate algorithm) for one key, atomically.
--
-- KEYS[1] holds the key's theoretical arrival time (TAT) in microseconds on the server's clock;
-- a missing key is a full bucket.
-- ARGV[1] is the emission interval: microseconds per request (1/rate).
-- ARGV[2] is the limit: burst x interval, how far the TAT may run ahead of now.
-- ARGV[3], when present, is the time in microseconds to use instead of the server's clock
-- (tests only: production leaves it out so that every replica measures against one clock).
--
-- Returns {1, remaining, reset} when the request is admitted and {0, wait, reset} when it is
-- refused: remaining whole requests left, microseconds until the bucket is full again (reset) and
-- until the next request will be admitted (wait). The key expires when the bucket is full.
if redis.replicate_commands then
  redis.replicate_commands() -- needed before Redis 5 to write after reading TIME
end
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then
  tat = now
end
local nxt = tat + interval
local ahead = nxt - now
if ahead > limit then
  return {0, ahead - limit, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.ceil(ahead / 1000) + 1)
return {1, math.floor((limit - ahead) / interval), ahead}
