-- Gives back a slot that will not be used (its poller was dropped while
-- waiting): the bucket is full one period sooner, never sooner than the slot.
--
-- KEYS[1]  the bucket (see reserve.lua)
-- ARGV[1]  period in microseconds
-- ARGV[2]  the slot: microseconds from now
-- Returns  1 when something was given back, 0 otherwise
local stored = redis.call('GET', KEYS[1])
if not stored then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local slot = now + math.max(tonumber(ARGV[2]), 0)
local full_at = math.max(tonumber(stored) - tonumber(ARGV[1]), slot)
if full_at <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], string.format('%.0f', full_at),
  'PX', math.floor((full_at - now) / 1000) + 1000)
return 1
