//! The Lua scripts evald runs in Redis. Each touches keys of one hash slot
//! only, uses the Redis 7.0 command set (Valkey runs them unchanged) and is
//! sent by `EVALSHA` (`EVAL` once after a restart or failover).
//!
//! The merge itself happens in Rust, with the same aggregate code as the
//! memory store; a script only checks that the bucket has not changed since
//! it was read (its version) and then writes the merged values, so a merge is
//! a compare-and-set, atomic per slot. Lua cannot run the compaction or the
//! AUC without re-implementing them; `WATCH`/`MULTI` would need a dedicated
//! connection per transaction, which the multiplexed cluster client cannot
//! give.

use redis::Script;

/// Creates a stream in the registry unless it exists; answers
/// `"<id> <buckets> <created_ms>"`, or nil when the stream limit is reached.
/// KEYS: registry, id counter. ARGV: name, max streams, buckets, now (ms).
pub fn create() -> Script {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then return v end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[2]) then return false end
local id = redis.call('INCR', KEYS[2])
v = id .. ' ' .. ARGV[3] .. ' ' .. ARGV[4]
redis.call('HSET', KEYS[1], ARGV[1], v)
return v
",
    )
}

/// Applies one bucket of a batch, once. Answers `{1, new_users}` when
/// applied now, `{2, new_users}` when the batch was applied before (its
/// marker exists), `{0, version}` when the bucket changed since it was read
/// (the caller reads again and retries).
/// KEYS: users hash, sums hash, batch marker.
/// ARGV: expected version, marker TTL (ms; 0 leaves no marker), new sums
/// blob, new users in this bucket, then user/aggregate pairs.
pub fn apply_bucket() -> Script {
    Script::new(
        r"
local done = redis.call('GET', KEYS[3])
if done then return {2, done} end
local v = redis.call('HGET', KEYS[2], 'v') or '0'
if v ~= ARGV[1] then return {0, v} end
redis.call('HSET', KEYS[2], 'v', tostring(tonumber(v) + 1), 's', ARGV[3])
local i = 5
while i <= #ARGV do
  local j = math.min(i + 999, #ARGV)
  redis.call('HSET', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
if ARGV[2] ~= '0' then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[2]) end
return {1, ARGV[4]}
",
    )
}

/// Adds a batch to the stream's totals, once; answers `"<count> <users>"`
/// (the first answer again for a batch applied before).
/// KEYS: meta hash, batch marker. ARGV: records, new users, now (ms), marker
/// TTL (ms; 0 leaves no marker).
pub fn apply_meta() -> Script {
    Script::new(
        r"
local done = redis.call('GET', KEYS[2])
if done then return done end
local c = redis.call('HINCRBY', KEYS[1], 'count', ARGV[1])
local u = redis.call('HINCRBY', KEYS[1], 'users', ARGV[2])
local t = tonumber(redis.call('HGET', KEYS[1], 'updated') or '0')
if tonumber(ARGV[3]) > t then redis.call('HSET', KEYS[1], 'updated', ARGV[3]) end
local r = c .. ' ' .. u
if ARGV[4] ~= '0' then redis.call('SET', KEYS[2], r, 'PX', ARGV[4]) end
return r
",
    )
}

/// Removes a stream from the registry if it still has id ARGV[2]; answers 1
/// when removed. KEYS: registry. ARGV: name, id.
pub fn unregister() -> Script {
    Script::new(
        r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
if string.match(v, '^%d+') ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
",
    )
}
