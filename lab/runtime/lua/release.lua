-- The scheduler asks how many jobs it may publish now (the shape's target + backlog bound).
-- KEYS: lease, active, run hash, run timeline.
-- ARGV: schedulerId, leaseMs, runId (whose keys were passed), nextSeq (first seq not yet
-- published), want, target (jobs the shape allows by now, counted from the run's start, as the
-- scheduler computed it from the clock of the last answer; -1: only read the clock), budget
-- (the most a scheduler that fell behind may release at once), backlog limit, shapeVersion (of
-- the shape `target` was computed from: after a change of shape nothing is granted until the
-- scheduler has read the new one), yMinutes and etaSeconds (the shape's rate now and when the
-- release will end, for /status).
-- Returns {status, ...}: {'lease', holder} | {'idle'} | {'paused'} | {'switch', activeRunId} |
-- {'ok', runId, granted, elapsedMs, xTotal, shapeVersion, nowMs, shapeLag}.
--
-- Catching up: a scheduler behind its target by more than `budget` (restarted, a new leader,
-- held back by the backlog) releases `budget` at once and forgives the rest (`shapeLag`), so no
-- outage ends in a burst; the run's timeline marks the second (`forgiven`, `backpressure`,
-- `paused`). Each job is counted in the timeline's `released` when first published.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'lease', redis.call('GET', KEYS[1]) or ''}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local active = redis.call('GET', KEYS[2])
if not active then return {'idle'} end
if active ~= ARGV[3] then return {'switch', active} end
local r = redis.call('HMGET', KEYS[3], 'state', 'xTotal', 'processed', 'failed', 'paused',
  'shapeStartMs', 'pausedMs', 'shapeLag', 'shapeVersion', 'grantedTo', 'startedAt')
if r[1] ~= 'running' then return {'idle'} end
local now = now_ms()
local sec = math.floor(now / 1000)
if r[5] == '1' then
  redis.call('HSET', KEYS[4], sec .. ':paused', 1)
  return {'paused'}
end
local x = tonumber(r[2])
if r[6] == '' then
  -- The shape's clock starts with the run's first release, so the time the scheduler took to
  -- pick the run up is not owed as a burst; the run's first shape is recorded from then.
  r[6] = tostring(now)
  redis.call('HSET', KEYS[3], 'shapeStartMs', now)
  local shapes = cjson.decode(redis.call('HGET', KEYS[3], 'shapes') or '[]')
  if shapes[1] then shapes[1].atMs = now end
  redis.call('HSET', KEYS[3], 'shapes', cjson.encode(shapes))
end
local elapsed = now - tonumber(r[6] or r[11]) - tonumber(r[7] or 0)
local version = r[9] or '1'
local lag = tonumber(r[8] or 0)
local answer = {'ok', active, 0, elapsed, x, version, now, lag}
local next_seq, want, target = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local remaining = x - next_seq
if remaining <= 0 or target < 0 or version ~= ARGV[9] then return answer end
redis.call('HSET', KEYS[3], 'yMinutes', ARGV[10], 'etaSeconds', ARGV[11])
-- Backpressure: jobs published but not yet settled stay under the bound.
local backlog = next_seq - tonumber(r[3]) - tonumber(r[4])
local room = tonumber(ARGV[8]) - backlog
local allowed = math.min(target - lag, x)
local budget = tonumber(ARGV[7])
if allowed - next_seq > budget then
  local forgiven = allowed - next_seq - budget
  lag = lag + forgiven
  answer[8] = lag
  redis.call('HSET', KEYS[3], 'shapeLag', lag)
  redis.call('HINCRBY', KEYS[4], sec .. ':forgiven', forgiven)
  allowed = next_seq + budget
end
if room <= 0 and allowed > next_seq then redis.call('HSET', KEYS[4], sec .. ':backpressure', 1) end
local granted = math.max(0, math.min(allowed - next_seq, want, remaining, room))
if granted > 0 then
  local first = tonumber(r[10] or 0)
  local up_to = next_seq + granted
  if up_to > first then
    count_in_second(KEYS[4], sec, 'released', up_to - math.max(first, next_seq), now * 1000)
    redis.call('HSET', KEYS[3], 'grantedTo', up_to)
  end
end
answer[3] = granted
return answer
