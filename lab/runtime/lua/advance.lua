-- The scheduler records that every job below `upTo` is confirmed by the broker.
-- KEYS: lease, active, run hash, released-per-second template, events, totals, history
-- template (templates: keys.py's names, the second filled in here).
-- ARGV: schedulerId, runId, upTo, maxlen, history seconds.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'lease', redis.call('GET', KEYS[1]) or ''}
end
local old = tonumber(redis.call('HGET', KEYS[3], 'enqueued') or '-1')
if old < 0 then return {'gone'} end
local up_to = tonumber(ARGV[3])
if up_to > old then
  redis.call('HSET', KEYS[3], 'enqueued', up_to)
  local sec = math.floor(now_us() / 1000000)
  local rate_key = string.format(KEYS[4], sec)
  redis.call('INCRBY', rate_key, up_to - old)
  redis.call('EXPIRE', rate_key, 120)
  count_history(KEYS[6], KEYS[7], false, 'released', up_to - old, ARGV[5])
  if up_to >= tonumber(redis.call('HGET', KEYS[3], 'xTotal')) then
    redis.call('HSET', KEYS[3], 'releasedAt', now_ms())
  end
  finish_if_done(KEYS[3], KEYS[2], ARGV[2])
  emit_run(KEYS[5], ARGV[4], KEYS[3], 'run')
end
return {'ok', math.max(old, up_to)}
