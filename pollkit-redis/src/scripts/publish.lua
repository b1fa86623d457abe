-- Appends a status to a key's stream, only while the caller holds the
-- key's lease: a holder that lost its lease (it stalled past the lease time
-- and another instance took over) can never publish next to the new one.
-- A note of the key goes to the hub's changes stream in the same step, so
-- that readers block on that one stream, not on every key's.
--
-- KEYS[1]  the lease
-- KEYS[2]  the stream
-- KEYS[3]  the hub's changes stream
-- ARGV[1]  the caller's token
-- ARGV[2]  approximate maximum length of the stream (MAXLEN ~)
-- ARGV[3]  how long the stream outlives its last entry, in milliseconds
-- ARGV[4]  the key, for the note
-- ARGV[5..] field, value, field, value...
-- Returns  the entry's id, or nil when the caller does not hold the lease
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 5))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'k', ARGV[4])
return id
