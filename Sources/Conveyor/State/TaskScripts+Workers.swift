import ConveyorRedis

extension TaskScripts {
    /// Renews the leases of `ARGV[first…]` still held by `worker`; reports lost leases and revoked ids.
    static let renewFunction = #"""
        local function renew(worker, now, lease, ttl, first)
          local renewed, lost, revoked = {}, {}, {}
          for i = first, #ARGV do
            local id = ARGV[i]
            local task = P .. 'task:' .. id
            if redis.call('HGET', task, 'lease_owner') == worker then
              redis.call('HSET', task, 'lease_until_ms', int(now + lease))
              redis.call('EXPIRE', task, ttl)
              renewed[#renewed + 1] = id
            else
              lost[#lost + 1] = id
            end
            if redis.call('EXISTS', P .. 'revoked:' .. id) == 1 then revoked[#revoked + 1] = id end
          end
          return {renewed, lost, revoked}
        end

        """#

    /// ARGV: P, worker, now, lease ms, TTL, ids…. Returns `{renewed, lost, revoked}` (three arrays of ids).
    static let renewLeases = RedisScript(
        prelude + renewFunction + #"""
            return renew(ARGV[2], clock(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), 6)
            """#)

    /// KEYS: worker, workers.
    /// ARGV: P, worker, now, lease ms, TTL, record TTL ms, host, pid, queues JSON, slots, started ms, running ids….
    /// Writes the worker's record and renews the leases of its running tasks in the same call.
    /// Returns `{renewed, lost, revoked}` as `renewLeases`.
    static let heartbeat = RedisScript(
        prelude + renewFunction + #"""
            local now = clock(ARGV[3])
            local recordTTL = tonumber(ARGV[6])
            local running = {}
            for i = 12, #ARGV do running[#running + 1] = cjson.encode(ARGV[i]) end
            redis.call('HSET', KEYS[1], 'host', ARGV[7], 'pid', ARGV[8], 'queues', ARGV[9], 'slots', ARGV[10],
              'started_ms', ARGV[11], 'running', '[' .. table.concat(running, ', ') .. ']',
              'last_beat_ms', int(now))
            redis.call('PEXPIRE', KEYS[1], int(recordTTL))
            redis.call('ZADD', KEYS[2], int(now), ARGV[2])
            redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. int(now - recordTTL))
            if redis.call('PTTL', KEYS[2]) < recordTTL then redis.call('PEXPIRE', KEYS[2], int(recordTTL)) end
            return renew(ARGV[2], now, tonumber(ARGV[4]), tonumber(ARGV[5]), 12)
            """#)
}
