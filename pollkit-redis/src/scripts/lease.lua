-- One round trip per tick for every lease an instance holds or wants.
--
-- KEYS[1..n]  lease keys; the first ARGV[3] of them are held (renew only if
--             still ours), the others wanted (take if free, renew if ours)
-- ARGV[1]     this instance's token
-- ARGV[2]     lease time in milliseconds
-- ARGV[3]     how many of KEYS are held
-- Returns     one 1 (ours now) or 0 (someone else's) per key
local held = tonumber(ARGV[3])
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    -- Compare and renew: only the holder extends its lease.
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  elseif i > held and redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
