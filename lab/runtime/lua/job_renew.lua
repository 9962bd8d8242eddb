-- A worker's heartbeat keeps the leases of the attempts it runs. KEYS: the jobs' hashes.
-- ARGV: lease ms, then one lease token per key. Returns how many leases were still its own
-- (one that is not was taken over: its attempt stops at its next step and writes nothing).
local until_ms = now_ms() + tonumber(ARGV[1])
local kept = 0
for i, key in ipairs(KEYS) do
  local j = redis.call('HMGET', key, 'state', 'lease')
  if j[1] == 'active' and j[2] == ARGV[i + 1] then
    redis.call('HSET', key, 'leaseUntil', until_ms)
    kept = kept + 1
  end
end
return kept
