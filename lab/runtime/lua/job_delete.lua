-- DELETE /jobs/{id}, and pruning. KEYS: job, log, job stream, events, tombstone, all-jobs index,
-- delayed jobs, promoting jobs.
-- ARGV: id, maxlen, state template, tombstone TTL in seconds, ended before (ms; 0 for any job
-- that is not running). Pruning passes its cutoff, so what it listed as ended long ago is
-- deleted only if it still is when the script runs: a job retried in between stays.
-- Returns {'deleted'}, {'missing'} or {'conflict', state}.
local j = redis.call('HMGET', KEYS[1], 'state', 'kind', 'finishedAt')
if not j[1] then return {'missing'} end
if j[1] == 'active' then return {'conflict', 'active'} end
local cutoff = tonumber(ARGV[5])
if cutoff > 0 then
  local ended = j[1] == 'completed' or j[1] == 'failed' or j[1] == 'cancelled'
  if not ended or (tonumber(j[3]) or cutoff) >= cutoff then return {'conflict', j[1]} end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
redis.call('ZREM', string.format(ARGV[3], j[1]), ARGV[1])
redis.call('SET', KEYS[5], j[1], 'EX', ARGV[4])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'type', 'job', 'jobId', ARGV[1],
  'kind', j[2], 'state', 'deleted', 'at', now_ms())
return {'deleted'}
