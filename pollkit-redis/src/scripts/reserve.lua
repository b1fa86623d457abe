-- Reserves the earliest start at or after a due time in a GCRA token bucket
-- shared by every instance, on the Redis server's clock (TIME), so that the
-- clocks of the instances never enter the sums: they send and receive
-- durations relative to "now" only.
--
-- KEYS[1]  the bucket: the theoretical arrival time ("full at"), in
--          microseconds of the server's clock
-- ARGV[1]  period in microseconds (one request per period)
-- ARGV[2]  burst (requests that may start at once when the bucket is full)
-- ARGV[3]  due: microseconds from now (0 when already due)
-- ARGV[4]  limit: microseconds from now after which nothing may be reserved
--          (the poller's deadline), or -1 for none
-- ARGV[5]  floor: microseconds from now of the furthest slot the caller
--          holds (granted, not yet started), or -1 for none. The bucket is
--          full at least one period after it: a bucket that lost its key
--          (DEL, FLUSHALL, eviction, a failover that lost writes, Redis
--          restarting empty) is re-seeded from the slots still out there.
-- Returns  { reserved (1) or not (0), start in microseconds from now,
--            the key was lost (1: missing while the caller holds a slot) }
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local due = now + math.max(tonumber(ARGV[3]), 0)
local limit = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])

local full_at = due
local lost = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  full_at = math.max(tonumber(stored), due)
elseif floor >= 0 then
  -- The key lives a second past the last slot it granted: missing while a
  -- slot it granted is still ahead, it was lost.
  lost = 1
end
if floor >= 0 then
  full_at = math.max(full_at, now + floor + period)
end
-- The bucket holds `burst` tokens: a start is allowed once the theoretical
-- arrival time is no more than `burst - 1` periods ahead of it.
local start = math.max(full_at - period * (burst - 1), due)
if limit >= 0 and start > now + limit then
  -- Past the poller's deadline: reserve nothing; it goes at its deadline.
  return { 0, math.max(now + limit, due) - now, lost }
end
full_at = full_at + period
-- The key lives as long as it holds a reservation, plus a second.
redis.call('SET', KEYS[1], string.format('%.0f', full_at),
  'PX', math.floor((full_at - now) / 1000) + 1000)
return { 1, start - now, lost }
