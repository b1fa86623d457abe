-- Appends a status to a key's stream, only while the caller holds the
-- key's lease: a holder that lost its lease (it stalled past the lease time
-- and another instance took over) can never publish next to the new one.
--
-- KEYS[1]  the lease
-- KEYS[2]  the stream
-- ARGV[1]  the caller's token
-- ARGV[2]  approximate maximum length of the stream (MAXLEN ~)
-- ARGV[3]  how long the stream outlives its last entry, in milliseconds
-- ARGV[4..] field, value, field, value...
-- Returns  the entry's id, or nil when the caller does not hold the lease
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return id
