-- A running job reports a step. KEYS: job, log, job stream, events.
-- ARGV: id, maxlen, state template, attempt, percent, step, message, lease token, lease ms.
-- Returns 'ok', 'cancel' (a cancel was requested: stop now) or 'gone' (not this attempt's, or
-- not this owner's, any more: stop and write nothing). A step renews the owner's lease.
local j = redis.call('HMGET', KEYS[1], 'state', 'attempt', 'cancelRequested', 'lease')
if j[1] ~= 'active' or j[2] ~= ARGV[4] or j[4] ~= ARGV[8] then return 'gone' end
redis.call('HSET', KEYS[1], 'progress', ARGV[5], 'step', ARGV[6],
  'leaseUntil', now_ms() + tonumber(ARGV[9]))
job_emit(ARGV[7])
if j[3] == '1' then return 'cancel' end
return 'ok'
