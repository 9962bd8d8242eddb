-- KEYS: active, run hash, events.  ARGV: runId, shape (JSON), base (the jobs the old shape had
-- allowed by now, computed by the caller from the run's clock), shapeVersion (of the clock the
-- caller read), stream maxlen, yMinutes (the new shape's first rate), the shape in words, the
-- most bytes the run's shape history may hold.
-- A running run follows a new shape from now on: its clock starts again at `base` jobs, its lag
-- is settled, and the change is kept in `shapes` (the run's history). Refused ('moved') when the
-- run's clock moved since the caller read it (another change, a pause), so `base` is never
-- computed from an old clock; refused ('full', bytes) when the history would grow past its
-- bound (every judgment and /timeline reads it), with nothing changed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'idle'} end
local r = redis.call('HMGET', KEYS[2], 'state', 'shapeVersion', 'paused')
if r[1] ~= 'running' then return {'idle'} end
if r[2] ~= ARGV[4] then return {'moved'} end
local now = now_ms()
local shapes = cjson.decode(redis.call('HGET', KEYS[2], 'shapes') or '[]')
table.insert(shapes, {atMs = now, shape = cjson.decode(ARGV[2]), base = tonumber(ARGV[3])})
local history = cjson.encode(shapes)
if #history > tonumber(ARGV[8]) then return {'full', #history} end
redis.call('HSET', KEYS[2], 'shape', ARGV[2], 'shapeStartMs', now, 'pausedMs', 0,
  'shapeBase', ARGV[3], 'shapeLag', 0, 'yMinutes', ARGV[6], 'shapeText', ARGV[7])
if r[3] == '1' then redis.call('HSET', KEYS[2], 'pausedAt', now) end
redis.call('HINCRBY', KEYS[2], 'shapeVersion', 1)
redis.call('HSET', KEYS[2], 'shapes', history)
emit_run(KEYS[3], ARGV[5], KEYS[2], 'run')
return {'ok', now}
