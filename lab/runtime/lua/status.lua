-- Everything GET /status shows, in one round trip.
-- KEYS: active, runs, workers, schedulers, paused queues, head ages.  ARGV: run key template, processed-per-second
-- template, worker key template, rate window in seconds, scheduler key template,
-- released-per-second template (templates: keys.py's names; run id and second filled in here).
local run_id = redis.call('GET', KEYS[1])
if not run_id then
  local last = redis.call('ZRANGE', KEYS[2], -1, -1)
  run_id = last[1]
end
local out = {active = redis.call('EXISTS', KEYS[1]) == 1}
local now = now_us()
out.nowMs = math.floor(now / 1000)
if run_id then
  out.run = hgetall_table(string.format(ARGV[1], run_id))
  -- What only the run's own record needs (GET /runs/{id}); a trace's shape can be large.
  out.run.payload, out.run.shape, out.run.shapes, out.run.pauses = nil, nil, nil, nil
  -- `slo` and `sloState` stay: /status shows each objective's state.
  local sec = math.floor(now / 1000000)
  local window = tonumber(ARGV[4])
  local pk, ek = {}, {}
  -- Whole seconds only: the current one is still filling.
  for i = 1, window do
    pk[i] = string.format(ARGV[2], run_id, sec - i)
    ek[i] = string.format(ARGV[6], run_id, sec - i)
  end
  local p, e = 0, 0
  for _, v in ipairs(redis.call('MGET', unpack(pk))) do p = p + (tonumber(v) or 0) end
  for _, v in ipairs(redis.call('MGET', unpack(ek))) do e = e + (tonumber(v) or 0) end
  out.processedInWindow = p
  out.enqueuedInWindow = e
  out.windowSeconds = window
end
-- The heartbeats of a set's members; members whose heartbeat expired are pruned.
local function live(set_key, template)
  local found = {}
  for _, id in ipairs(redis.call('SMEMBERS', set_key)) do
    local h = hgetall_table(string.format(template, id))
    if next(h) == nil then
      redis.call('SREM', set_key, id)
    else
      table.insert(found, h)
    end
  end
  return found
end
out.pausedQueues = redis.call('SMEMBERS', KEYS[5])
out.headAges = hgetall_table(KEYS[6])
out.workers = live(KEYS[3], ARGV[3])
out.schedulers = live(KEYS[4], ARGV[5])
return cjson.encode(out)
