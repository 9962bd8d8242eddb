-- Helpers prepended to every lab script (lab/runtime/scripts.py). Redis' own clock (TIME) is the one
-- clock of the lab, so processes on machines with skewed clocks still agree on rates.

-- A caller may give its own clock as the last argument, `clock:<µs>` (tests only: a script and
-- its in-memory stand-in are driven on one simulated clock, lab/runtime/stores/base.py); it is
-- taken off ARGV before the script reads its arguments.
local CLOCK_US = nil
if #ARGV > 0 then
  local given = string.match(ARGV[#ARGV], '^clock:(%d+)$')
  if given then
    CLOCK_US = tonumber(given)
    ARGV[#ARGV] = nil
  end
end

local function now_us()
  if CLOCK_US then return CLOCK_US end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function now_ms()
  return math.floor(now_us() / 1000)
end

local function hgetall_table(key)
  local flat = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #flat, 2 do out[flat[i]] = flat[i + 1] end
  return out
end

-- One progress event carrying the run's counters, so a client can draw from any single event.
local function emit_run(events_key, maxlen, run_key, kind)
  local r = redis.call('HMGET', run_key, 'runId', 'state', 'xTotal', 'yMinutes', 'enqueued',
    'processed', 'failed', 'running', 'startedAt', 'stoppedAt', 'finishedAt')
  redis.call('HSET', run_key, 'lastEventMs', now_ms())
  return redis.call('XADD', events_key, 'MAXLEN', '~', maxlen, '*',
    'type', kind, 'runId', r[1], 'state', r[2], 'xTotal', r[3], 'yMinutes', r[4],
    'enqueued', r[5], 'processed', r[6], 'failed', r[7], 'running', r[8],
    'startedAt', r[9] or '', 'stoppedAt', r[10] or '', 'finishedAt', r[11] or '')
end

-- A run is complete once every job was released and each has been processed or failed.
-- Returns true when this call completed it (the caller then emits the final event).
local function finish_if_done(run_key, active_key, run_id)
  local r = redis.call('HMGET', run_key, 'state', 'xTotal', 'enqueued', 'processed', 'failed')
  local x, enq = tonumber(r[2]), tonumber(r[3])
  local settled = tonumber(r[4]) + tonumber(r[5])
  if r[1] == 'running' and enq >= x and settled >= x then
    redis.call('HSET', run_key, 'state', 'completed', 'running', 0, 'finishedAt', now_ms())
    if redis.call('GET', active_key) == run_id then redis.call('DEL', active_key) end
    return true
  end
  if (r[1] == 'stopped' or r[1] == 'breached') and settled >= enq
      and redis.call('HGET', run_key, 'finishedAt') == '' then
    redis.call('HSET', run_key, 'finishedAt', now_ms())
    return true
  end
  return false
end

-- Single jobs. Every job script takes KEYS = job hash, log list, job stream, event stream and
-- ARGV[1..3] = job id, event stream maxlen, per-state index template.
local JOB_STREAM_LEN = 1000
local JOB_LOG_LEN = 1000

-- Move the job between the per-state indexes and set its state.
local function job_move(state_tpl, id, from, to)
  if from and from ~= '' then redis.call('ZREM', string.format(state_tpl, from), id) end
  redis.call('ZADD', string.format(state_tpl, to), 0, id)
  redis.call('HSET', KEYS[1], 'state', to)
end

-- Append a log line and emit one event to the job's stream and to the lab's event stream.
-- Returns the id in the job's stream (what `Last-Event-ID` names on /jobs/{id}/stream).
-- Each event bumps the record's `version`, so a client holding a listing and a live stream
-- keeps whichever of the two saw the job last (a listing can be older than an event it races).
local function job_emit(message)
  local now = now_ms()
  local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
  local j = redis.call('HMGET', KEYS[1], 'id', 'kind', 'state', 'progress', 'step', 'attempt',
    'error', 'worker')
  if message and message ~= '' then
    redis.call('RPUSH', KEYS[2], cjson.encode({at = now, attempt = tonumber(j[6]),
      step = j[5] or '', progress = tonumber(j[4]) or 0, message = message}))
    redis.call('LTRIM', KEYS[2], -JOB_LOG_LEN, -1)
  end
  local fields = {'type', 'job', 'jobId', j[1], 'kind', j[2], 'state', j[3],
    'progress', j[4] or '0', 'step', j[5] or '', 'attempt', j[6], 'error', j[7] or '',
    'worker', j[8] or '', 'message', message or '', 'at', now, 'version', version}
  local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', JOB_STREAM_LEN, '*', unpack(fields))
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  return id
end

-- A run's timeline: `n` more jobs `field` in second `sec`, and how far into the second they were
-- counted (`<field>Ms`: the sum over them, in ms), so a reader can place each second's jobs within
-- it rather than spread evenly (lab/measure/jobtime.py's Little's law).
-- Releases are also summed per minute and per hour (`m<minute>:released`, `h<hour>:released`), so
-- the head-of-line age finds the oldest waiting job in a few reads however old the backlog is.
local function count_in_second(timeline_key, sec, field, n, us)
  redis.call('HINCRBY', timeline_key, sec .. ':' .. field, n)
  redis.call('HINCRBY', timeline_key, sec .. ':' .. field .. 'Ms', math.floor((us % 1000000) / 1000) * n)
  if field == 'released' then
    redis.call('HINCRBY', timeline_key, 'm' .. math.floor(sec / 60) .. ':released', n)
    redis.call('HINCRBY', timeline_key, 'h' .. math.floor(sec / 3600) .. ':released', n)
  end
end

-- History: `n` more jobs `field` (released | processed | failed) now, counted three ways at once:
-- the lab's lifetime totals, the rolling history (10-second buckets that expire after `ttl_s`)
-- and the run's own per-second timeline (unless `timeline_key` is false: a run's releases
-- are in its timeline when published, release.lua). Only growth is history; a correction is not.
local function count_history(totals_key, history_tpl, timeline_key, field, n, ttl_s)
  if n <= 0 then return end
  local us = now_us()
  local sec = math.floor(us / 1000000)
  redis.call('HINCRBY', totals_key, field, n)
  local bucket_key = string.format(history_tpl, sec - sec % 10)
  redis.call('HINCRBY', bucket_key, field, n)
  redis.call('EXPIRE', bucket_key, ttl_s)
  if timeline_key then count_in_second(timeline_key, sec, field, n, us) end
end
