-- A worker records one batch's outcome: exactly-once counting by a per-run bitmap indexed by
-- seq (SETBIT returns the old bit, so a redelivered job is never counted twice).
-- KEYS: active, events, totals, history template, lifetime latency, the batch's `applied` key,
-- then for each run in ARGV[2]: hash, done bitmap, failed bitmap, processed-per-second template,
-- timeline, latency, owned set, again bitmap (templates: keys.py's names), then the keys the
-- middleware counts into.
-- ARGV: stream maxlen, JSON [[runId, [done seqs], [failed seqs], [[seq, [[key, field, n], ...]],
-- ...], {window, kinds, jobs: [[seq, kind index, 3 fine buckets, 3 coarse buckets, 3 µs], ...]}],
-- ...] (key: a 1-based index among the middleware's keys; a bucket of -1: not known;
-- lab/runtime/recording.py), history seconds, the batch's name ('' for none). The latency of a job (lab/runtime/latency.py)
-- is counted with it, once: summed under numeric keys here, written once per field at the end,
-- to the run's whole histogram (`<q|s|e>|<kind>|<bucket>`) and to its window's.
-- Returns the number of jobs newly counted as processed and as failed. What the middleware
-- counts for a job is added only when that job is counted here for the first time.
--
-- A run's latency may come added up instead (`{window, kinds, agg: {fine, coarse, sums}}`,
-- lab/runtime/latency.py's `aggregate`): a batch's few hundred numbers rather than eleven a
-- job. It is exact only if every job of the batch is counted now, so before anything is written
-- each such run's seqs are checked new (neither bit set, none twice); if one is not, nothing is
-- written and {-1, -1} asks the worker for the batch job by job.
local runs = cjson.decode(ARGV[2])
local new_done, new_failed = 0, 0
local sec = math.floor(now_us() / 1000000)
local PER_RUN = 8
-- A batch sent again (its reply lost to a timeout) is not counted again: the caller names each
-- batch (ARGV[4]), and what it counted is kept under `applied` for ten minutes.
if ARGV[4] ~= '' then
  local before = redis.call('GET', KEYS[6])
  if before then
    local done_before, failed_before = string.match(before, '^(-?%d+),(-?%d+)$')
    return {tonumber(done_before), tonumber(failed_before)}
  end
end
local extra_base = 6 + #runs * PER_RUN
-- What the middleware counts is summed here first and written once per key and field at the
-- end: a batch's jobs mostly land in the same fields (one HINCRBY each, not one per job). Each
-- key is listed in the run's `owned` set, so forgetting the run deletes it (retention.py).
local extra_sums, extra_order = {}, {}
local owned = {}  -- the owned set's key → {extra key index → true}
local function count_extra(ops, owned_key)
  if not ops then return end
  local mine = owned[owned_key]
  if mine == nil then
    mine = {}
    owned[owned_key] = mine
  end
  for _, op in ipairs(ops) do
    mine[op[1]] = true
    local slot = op[1] .. '\n' .. op[2]
    if extra_sums[slot] == nil then
      extra_sums[slot] = 0
      extra_order[#extra_order + 1] = {op[1], op[2], slot}
    end
    extra_sums[slot] = extra_sums[slot] + op[3]
  end
end
local LETTERS = {'q', 's', 'e'}
local lat_runs = {}
local life_counts, life_sums = {}, {}
local function count_latency(run_lat, t)
  if not t then return end
  for m = 1, 3 do
    local fine = t[2 + m]
    if fine >= 0 then
      local key = (m * 64 + t[2]) * 65536 + fine  -- metric, kind (this run's list), bucket
      run_lat.counts[key] = (run_lat.counts[key] or 0) + 1
      local series = (run_lat.index * 4 + m) * 64 + t[2]  -- also which run: kinds are per run
      local coarse = series * 64 + t[5 + m]
      local c = life_counts[coarse]
      if c == nil then
        c = {run_lat.kinds[t[2]], m, t[5 + m], 0}
        life_counts[coarse] = c
      end
      c[4] = c[4] + 1
      local sum = life_sums[series]
      if sum == nil then
        sum = {run_lat.kinds[t[2]], m, 0}
        life_sums[series] = sum
      end
      sum[3] = sum[3] + t[8 + m]
    end
  end
end
local function count_aggregate(run_lat, agg)
  for _, f in ipairs(agg.fine) do  -- metric, kind, bucket, n
    local key = (f[1] * 64 + f[2]) * 65536 + f[3]
    run_lat.counts[key] = (run_lat.counts[key] or 0) + f[4]
  end
  for _, c in ipairs(agg.coarse) do
    local series = (run_lat.index * 4 + c[1]) * 64 + c[2]
    local coarse = series * 64 + c[3]
    local e = life_counts[coarse]
    if e == nil then
      e = {run_lat.kinds[c[2]], c[1], c[3], 0}
      life_counts[coarse] = e
    end
    e[4] = e[4] + c[4]
  end
  for _, m in ipairs(agg.sums) do
    local series = (run_lat.index * 4 + m[1]) * 64 + m[2]
    local e = life_sums[series]
    if e == nil then
      e = {run_lat.kinds[m[2]], m[1], 0}
      life_sums[series] = e
    end
    e[3] = e[3] + m[3]
  end
end
-- Whether every seq is new: not twice in the batch, no done bit set (nor, for a failed one,
-- its failed bit). One BITFIELD read per thousand seqs.
local function all_new(done_key, failed_key, done, failed)
  local seen = {}
  local function check(key, seqs)
    for first = 1, #seqs, 1000 do
      local args = {}
      for j = first, math.min(first + 999, #seqs) do
        args[#args + 1] = 'GET'
        args[#args + 1] = 'u1'
        args[#args + 1] = seqs[j]
      end
      for _, bit in ipairs(redis.call('BITFIELD', key, unpack(args))) do
        if bit ~= 0 then return false end
      end
    end
    return true
  end
  for _, list in ipairs({done, failed}) do
    for _, seq in ipairs(list) do
      if seen[seq] then return false end
      seen[seq] = true
    end
  end
  return check(done_key, done) and check(done_key, failed) and check(failed_key, failed)
end
for i, entry in ipairs(runs) do
  local base = 6 + (i - 1) * PER_RUN
  if entry[5] and entry[5].agg and redis.call('EXISTS', KEYS[base + 1]) == 1 then
    local x = tonumber(redis.call('HGET', KEYS[base + 1], 'xTotal'))
    for _, list in ipairs({entry[2], entry[3]}) do
      for _, seq in ipairs(list) do
        if seq >= x then return {-1, -1} end
      end
    end
    if not all_new(KEYS[base + 2], KEYS[base + 3], entry[2], entry[3]) then return {-1, -1} end
  end
end
for i, entry in ipairs(runs) do
  local base = 6 + (i - 1) * PER_RUN
  local run_key, done_key, failed_key, rate_tpl, timeline_key, latency_key, owned_key =
    KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5], KEYS[base + 6],
    KEYS[base + 7]
  local again_key = KEYS[base + 8]
  local extra = {}
  for _, pair in ipairs(entry[4] or {}) do extra[pair[1]] = pair[2] end
  local timings = {}
  local run_lat = {key = latency_key, counts = {}, kinds = {}, window = 0, index = i,
    owned = owned_key}
  if entry[5] and (entry[5].jobs or entry[5].agg) then
    run_lat.kinds, run_lat.window = entry[5].kinds, entry[5].window
    for _, t in ipairs(entry[5].jobs or {}) do timings[t[1]] = t end
  end
  lat_runs[#lat_runs + 1] = run_lat
  local x = tonumber(redis.call('HGET', run_key, 'xTotal') or '-1')
  if x >= 0 then
    if entry[5] and entry[5].agg then count_aggregate(run_lat, entry[5].agg) end
    local done_delta, failed_delta, again_delta, unexpected = 0, 0, 0, 0
    -- A job that ends again (a redelivery that ran it a second time) is counted once, and its
    -- second end is the delivery verdict's "executed more than once"; a seq the run never had
    -- is "unexpected", and counted nowhere else.
    local function again(seq)
      if redis.call('SETBIT', again_key, seq, 1) == 0 then again_delta = again_delta + 1 end
    end
    local done_seqs, failed_seqs = {}, {}
    for _, seq in ipairs(entry[2]) do
      if seq < x then done_seqs[#done_seqs + 1] = seq else unexpected = unexpected + 1 end
    end
    for _, seq in ipairs(entry[3]) do
      if seq < x then failed_seqs[#failed_seqs + 1] = seq else unexpected = unexpected + 1 end
    end
    for _, seq in ipairs(done_seqs) do
      if redis.call('SETBIT', done_key, seq, 1) ~= 0 then
        again(seq)
      else
        done_delta = done_delta + 1
        count_extra(extra[seq], owned_key)
        count_latency(run_lat, timings[seq])
        -- A job counted failed earlier (e.g. retried by hand) that now succeeds moves over.
        if redis.call('GETBIT', failed_key, seq) == 1 then
          redis.call('SETBIT', failed_key, seq, 0)
          failed_delta = failed_delta - 1
        end
      end
    end
    for _, seq in ipairs(failed_seqs) do
      if redis.call('GETBIT', done_key, seq) == 0 and
         redis.call('SETBIT', failed_key, seq, 1) == 0 then
        failed_delta = failed_delta + 1
        count_extra(extra[seq], owned_key)
        count_latency(run_lat, timings[seq])
      else
        again(seq)
      end
    end
    if again_delta > 0 then redis.call('HINCRBY', run_key, 'executedAgain', again_delta) end
    if unexpected > 0 then redis.call('HINCRBY', run_key, 'unexpected', unexpected) end
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
for _, entry in ipairs(extra_order) do
  redis.call('HINCRBY', KEYS[extra_base + entry[1]], entry[2], extra_sums[entry[3]])
end
for owned_key, indexes in pairs(owned) do
  for index in pairs(indexes) do redis.call('SADD', owned_key, KEYS[extra_base + index]) end
end
-- Each count goes to the run's whole histogram and to its 10-second window's (`:w:<window>`,
-- listed in the run's owned set), so a reader of a window never reads the run's whole life.
for _, run_lat in ipairs(lat_runs) do
  local window_key = run_lat.key .. ':w:' .. run_lat.window
  local wrote = false
  for key, n in pairs(run_lat.counts) do
    local fine = key % 65536
    local series = (key - fine) / 65536
    local kind = series % 64
    local m = (series - kind) / 64
    local field = LETTERS[m] .. '|' .. run_lat.kinds[kind] .. '|' .. fine
    redis.call('HINCRBY', run_lat.key, field, n)
    redis.call('HINCRBY', window_key, field, n)
    wrote = true
  end
  if wrote then redis.call('SADD', run_lat.owned, window_key) end
end
for _, c in pairs(life_counts) do
  redis.call('HINCRBY', KEYS[5], LETTERS[c[2]] .. '|' .. c[1] .. '|' .. c[3], c[4])
end
-- A sum past 1e17 would reach Redis as `1e+17` (Lua writes a number with %.14g), which
-- HINCRBY refuses: written out whole.
for _, c in pairs(life_sums) do
  redis.call('HINCRBY', KEYS[5], LETTERS[c[2]] .. '|' .. c[1] .. '|sum', string.format('%.0f', c[3]))
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[6], new_done .. ',' .. new_failed, 'PX', 600000)
end
return {new_done, new_failed}
