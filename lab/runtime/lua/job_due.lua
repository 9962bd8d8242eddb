-- Delayed single jobs whose time has come, taken by one API process to publish.
-- KEYS: delayed jobs, promoting jobs.  ARGV: now (ms), limit, stale (ms: a claim older than this
-- belongs to a process that died and is taken again).
-- Moves what is due from delayed to promoting (score: now) and returns those ids, with the
-- stale claims; the caller publishes each and then removes it from promoting.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]), 'LIMIT', 0,
  limit)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now, id)
end
for _, id in ipairs(stale) do
  redis.call('ZADD', KEYS[2], now, id)
  table.insert(due, id)
end
return due
