-- KEYS: active, runs, run hash, events.  ARGV: runId, xTotal, yMinutes (the shape's first rate),
-- stream maxlen, kind, payload (JSON), shape (JSON), seed, the shape in words, objectives (JSON,
-- '' for none), '1' to stop the run on a breach, the objectives' grace in seconds ('' default),
-- the target (the system under test: `lab`, `celery`, ...).
-- Creates a run and makes it the active one, unless a run is active already. The run's shape
-- clock starts with its first release (release.lua sets `shapeStartMs`): shape time is the
-- run's time since then minus its pauses (`pausedMs`), and the
-- release target is `shapeBase` (the first job goes at once) plus the shape's integral, less
-- what a scheduler that fell behind forgave (`shapeLag`; lab/runtime/shapes.py).
local active = redis.call('GET', KEYS[1])
if active then return {'conflict', active} end
local now = now_ms()
redis.call('HSET', KEYS[3], 'runId', ARGV[1], 'xTotal', ARGV[2], 'yMinutes', ARGV[3],
  'enqueued', 0, 'processed', 0, 'failed', 0, 'running', 1, 'state', 'running',
  'startedAt', now, 'releasedAt', '', 'stoppedAt', '', 'finishedAt', '',
  'kind', ARGV[5], 'payload', ARGV[6], 'shape', ARGV[7], 'seed', ARGV[8],
  'shapeStartMs', '', 'pausedMs', 0, 'shapeBase', 1, 'shapeLag', 0, 'shapeVersion', 1,
  'grantedTo', 0, 'shapeText', ARGV[9], 'target', ARGV[13], 'shapes', cjson.encode({{atMs = now, shape = cjson.decode(ARGV[7])}}))
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[3], 'slo', ARGV[10], 'abortOnBreach', ARGV[11], 'sloGrace', ARGV[12])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now, ARGV[1])
emit_run(KEYS[4], ARGV[4], KEYS[3], 'run')
return {'ok', ARGV[1]}
