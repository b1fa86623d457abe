-- Gives a lease up, if it is still the caller's (compare and delete).
-- KEYS[1] the lease; ARGV[1] the caller's token. Returns 1 if deleted.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
