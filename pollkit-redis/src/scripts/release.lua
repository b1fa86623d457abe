-- Gives back a slot that will not be used (its poller was dropped while
-- waiting for it). Only the last slot booked can be given back: the bucket
-- is then full one period sooner. A slot in the middle of the queue is not
-- given back (it costs one period of rate): rewinding the tail for it would
-- book the next request on the last slot already granted, two starts in the
-- same instant. A slot that has come already is not given back either.
--
-- KEYS[1]  the bucket (see reserve.lua)
-- ARGV[1]  period in microseconds
-- ARGV[2]  the slot: microseconds from now
-- ARGV[3]  burst (see reserve.lua)
-- Returns  1 when something was given back, 0 otherwise
local stored = redis.call('GET', KEYS[1])
if not stored then
  return 0
end
local ahead = tonumber(ARGV[2])
if ahead <= 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[3])
local slot = now + ahead
-- The last slot booked: a full bucket was booked `burst` periods before the
-- time it is full again. The slot was sent as a duration from the caller's
-- now, a round trip old at most: half a period tells it from its neighbours.
local last = tonumber(stored) - period * burst
if math.abs(slot - last) > period / 2 then
  return 0
end
local full_at = math.max(tonumber(stored) - period, slot)
if full_at <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%.0f', full_at),
  'PX', math.floor((full_at - now) / 1000) + 1000)
return 1
