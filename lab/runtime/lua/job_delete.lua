-- DELETE /jobs/{id}. KEYS: job, log, job stream, events, tombstone, all-jobs index.
-- ARGV: id, maxlen, state template, tombstone TTL in seconds.
-- Returns {'deleted'}, {'missing'} or {'conflict', 'active'}.
local j = redis.call('HMGET', KEYS[1], 'state', 'kind')
if not j[1] then return {'missing'} end
if j[1] == 'active' then return {'conflict', 'active'} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', string.format(ARGV[3], j[1]), ARGV[1])
redis.call('SET', KEYS[5], j[1], 'EX', ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'type', 'job', 'jobId', ARGV[1],
  'kind', j[2], 'state', 'deleted', 'at', now_ms())
return {'deleted'}
