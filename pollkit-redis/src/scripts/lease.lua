-- One round trip per tick for every lease an instance holds or wants; the
-- stream of every key held is kept as long as its lease (plus retention),
-- so a quiet key does not lose its last status while it is watched.
--
-- KEYS[1..n]     lease keys; the first ARGV[3] of them are held (renew only
--                if still ours), the others wanted (take if free, renew if
--                ours)
-- KEYS[n+1..2n]  the keys' streams, in the same order
-- ARGV[1]        this instance's token
-- ARGV[2]        lease time in milliseconds
-- ARGV[3]        how many of the lease keys are held
-- ARGV[4]        how long a stream outlives its last renewal, in milliseconds
--                (0: leave the streams' expiry alone this time)
-- Returns        one 1 (ours now) or 0 (someone else's) per lease key
local held = tonumber(ARGV[3])
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local key = KEYS[i]
  if redis.call('GET', key) == ARGV[1] then
    -- Compare and renew: only the holder extends its lease.
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif i > held and redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[i] = 1
  else
    out[i] = 0
  end
  if out[i] == 1 and ARGV[4] ~= '0' then
    redis.call('PEXPIRE', KEYS[n + i], ARGV[4])
  end
end
return out
