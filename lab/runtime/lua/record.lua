-- A worker records one batch's outcome: exactly-once counting by a per-run bitmap indexed by
-- seq (SETBIT returns the old bit, so a redelivered job is never counted twice).
-- KEYS: active, events, totals, history template, then for each run in ARGV[2]: hash, done bitmap,
-- failed bitmap, processed-per-second template, timeline (templates: keys.py's names), then the
-- keys the middleware counts into.
-- ARGV: stream maxlen, JSON [[runId, [done seqs], [failed seqs], [[seq, [[key, field, n], ...]],
-- ...]], ...] (key: a 1-based index among the middleware's keys), history seconds.
-- Returns the number of jobs newly counted as processed and as failed. What the middleware
-- counts for a job is added only when that job is counted here for the first time.
local runs = cjson.decode(ARGV[2])
local new_done, new_failed = 0, 0
local sec = math.floor(now_us() / 1000000)
local extra_base = 4 + #runs * 5
local function count_extra(ops)
  if not ops then return end
  for _, op in ipairs(ops) do
    redis.call('HINCRBY', KEYS[extra_base + op[1]], op[2], op[3])
  end
end
for i, entry in ipairs(runs) do
  local base = 4 + (i - 1) * 5
  local run_key, done_key, failed_key, rate_tpl, timeline_key =
    KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5]
  local extra = {}
  for _, pair in ipairs(entry[4] or {}) do extra[pair[1]] = pair[2] end
  if redis.call('EXISTS', run_key) == 1 then
    local done_delta, failed_delta = 0, 0
    for _, seq in ipairs(entry[2]) do
      if redis.call('SETBIT', done_key, seq, 1) == 0 then
        done_delta = done_delta + 1
        count_extra(extra[seq])
        -- A job counted failed earlier (e.g. retried by hand) that now succeeds moves over.
        if redis.call('GETBIT', failed_key, seq) == 1 then
          redis.call('SETBIT', failed_key, seq, 0)
          failed_delta = failed_delta - 1
        end
      end
    end
    for _, seq in ipairs(entry[3]) do
      if redis.call('GETBIT', done_key, seq) == 0 and
         redis.call('SETBIT', failed_key, seq, 1) == 0 then
        failed_delta = failed_delta + 1
        count_extra(extra[seq])
      end
    end
    if done_delta ~= 0 or failed_delta ~= 0 then
      local counts = redis.call('HMGET', run_key, 'processed', 'failed', 'enqueued', 'lastEventMs')
      local processed = redis.call('HINCRBY', run_key, 'processed', done_delta)
      local failed = redis.call('HINCRBY', run_key, 'failed', failed_delta)
      if done_delta > 0 then
        local rate_key = string.format(rate_tpl, sec)
        redis.call('INCRBY', rate_key, done_delta)
        redis.call('EXPIRE', rate_key, 120)
      end
      count_history(KEYS[3], KEYS[4], timeline_key, 'processed', done_delta, ARGV[3])
      count_history(KEYS[3], KEYS[4], timeline_key, 'failed', failed_delta, ARGV[3])
      local finished = finish_if_done(run_key, KEYS[1], entry[1])
      -- Throttle events to about ten a second, but never hold back the one that shows the
      -- queue caught up or the run finished, so a watcher never stays on a stale count.
      local caught_up = processed + failed >= tonumber(counts[3])
      local stale = now_ms() - tonumber(counts[4] or '0') >= 100
      if finished or caught_up or stale then
        emit_run(KEYS[2], ARGV[1], run_key, 'run')
      end
    end
    new_done = new_done + done_delta
    new_failed = new_failed + failed_delta
  end
end
return {new_done, new_failed}
