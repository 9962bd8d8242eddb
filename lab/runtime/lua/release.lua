-- The scheduler asks how many jobs it may publish now (GCRA rate limit + backlog bound).
-- KEYS: lease, active, run hash, run tat.  ARGV: schedulerId, leaseMs, runId (whose keys were
-- passed), nextSeq (first seq not yet published), want, burst seconds, backlog limit.
-- Returns {status, ...}: {'lease', holder} | {'idle'} | {'paused'} | {'switch', activeRunId} |
-- {'ok', runId, granted, waitUs, xTotal}.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'lease', redis.call('GET', KEYS[1]) or ''}
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local active = redis.call('GET', KEYS[2])
if not active then return {'idle'} end
if active ~= ARGV[3] then return {'switch', active} end
local r = redis.call('HMGET', KEYS[3], 'state', 'xTotal', 'yMinutes', 'processed', 'failed',
  'paused')
if r[1] ~= 'running' then return {'idle'} end
if r[6] == '1' then return {'paused'} end
local x, y = tonumber(r[2]), tonumber(r[3])
local next_seq, want = tonumber(ARGV[4]), tonumber(ARGV[5])
local remaining = x - next_seq
if remaining <= 0 then return {'ok', active, 0, 100000, x} end
-- Backpressure: jobs published but not yet settled stay under the bound.
local backlog = next_seq - tonumber(r[4]) - tonumber(r[5])
local room = tonumber(ARGV[7]) - backlog
-- GCRA: `tat` is when the tokens granted so far are paid for; the bucket holds `burst` tokens
-- at most, so an idle or restarted scheduler never catches up with a burst.
local period = 60000000 / y
-- At least two tokens, so a tick that fires a little late loses no time (no drift).
local burst = math.max(2, math.floor(y / 60 * tonumber(ARGV[6])))
local now = now_us()
local tat = tonumber(redis.call('GET', KEYS[4]) or (now - period))
local floor_tat = now - burst * period
if tat < floor_tat then tat = floor_tat end
local tokens = math.floor((now - tat) / period)
local granted = math.min(tokens, want, remaining, math.max(room, 0))
if granted > 0 then
  tat = tat + granted * period
  redis.call('SET', KEYS[4], string.format('%.0f', tat))
end
local wait = math.max(0, math.floor(tat + period - now))
if room <= 0 then wait = math.max(wait, 20000) end
return {'ok', active, granted, wait, x}
