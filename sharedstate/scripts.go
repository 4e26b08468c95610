package sharedstate

import "github.com/redis/go-redis/v9"

// The Lua scripts, each one atomic in Redis and one round trip. They run
// by EVALSHA, falling back to EVAL after a Redis restart emptied the
// script cache (redis.Script.Run). Each script touches only keys it is
// given, and the two keys of a grant share a hash tag, so they also run on
// a cluster.

// claimScript looks a grant up and, when no entry is there, takes the
// mint lease if it is free.
//
//	KEYS[1] the entry, KEYS[2] the lease
//	ARGV[1] the lease id, ARGV[2] the lease in ms, ARGV[3] "1" to pass over an entry
//	returns {1, entry} | {2} the lease is ours | {3} another replica holds it
var claimScript = redis.NewScript(`
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return {1, v} end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {3}
`)

// fillScript stores a minted entry until its expiry (SET ... PXAT, the
// atomic SET + PEXPIREAT) and releases the lease if it is still ours.
//
//	KEYS[1] the entry, KEYS[2] the lease
//	ARGV[1] the lease id, ARGV[2] the entry, ARGV[3] the expiry, Unix ms
var fillScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`)

// releaseScript deletes the lease only if it is still ours (compare and
// delete): a lease that expired and was taken by another replica is
// theirs.
//
//	KEYS[1] the lease; ARGV[1] the lease id; returns 1 if released
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// renewScript extends the lease only if it is still ours.
//
//	KEYS[1] the lease; ARGV[1] the lease id, ARGV[2] the lease in ms; returns 1 if renewed
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// gcraScript spends one request of a bucket with the generic cell rate
// algorithm, on Redis' clock (TIME), so that every replica sees the same
// time. The bucket is one number, the theoretical arrival time (TAT) in
// microseconds; it admits while TAT + interval - burst * interval <= now,
// which is a token bucket of size burst refilled every interval. The key
// expires when the bucket would be full again.
//
//	KEYS[1] the bucket
//	ARGV[1] the interval between requests, µs (1e6 / rate), ARGV[2] the burst
//	returns 0 when admitted, else the µs until a request would be
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local next = tat + interval
local allowed_at = next - burst * interval
if allowed_at > now then return math.ceil(allowed_at - now) end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1)
return 0
`)
