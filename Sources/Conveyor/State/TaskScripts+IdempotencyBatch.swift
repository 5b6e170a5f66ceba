import ConveyorRedis

extension TaskScripts {
    /// KEYS: idem:<key> × N. ARGV: P, now, pending ms, TTL ms, candidate id × N (one per key, in order).
    /// `reserveIdempotency` for each key in turn, in one call: returns N replies, each exactly the single script's
    /// (`{'reserved', id}`, `{'confirmed', id}` or `{'pending', id, until ms}`).
    static let reserveIdempotencyMany = RedisScript(
        prelude + #"""
            local now = clock(ARGV[2])
            local untilMs = int(now + tonumber(ARGV[3]))
            local out = {}
            for i, key in ipairs(KEYS) do
              local candidate = ARGV[4 + i]
              local cur = redis.call('HMGET', key, 'id', 'state', 'pending_until_ms')
              if not cur[1] then
                redis.call('HSET', key, 'id', candidate, 'state', 'pending', 'pending_until_ms', untilMs)
                redis.call('PEXPIRE', key, ARGV[4])
                out[i] = {'reserved', candidate}
              elseif cur[2] == 'confirmed' then
                out[i] = {'confirmed', cur[1]}
              else
                local pendingUntil = tonumber(cur[3]) or 0
                if pendingUntil > now then
                  out[i] = {'pending', cur[1], pendingUntil}
                else
                  redis.call('HSET', key, 'pending_until_ms', untilMs)
                  out[i] = {'reserved', cur[1]}
                end
              end
            end
            return out
            """#)

    /// KEYS: idem:<key> × N. ARGV: P, TTL ms, id × N (one per key, in order).
    /// `confirmIdempotency` for each key in turn, in one call: returns the N ids the keys name.
    static let confirmIdempotencyMany = RedisScript(
        #"""
        local out = {}
        for i, key in ipairs(KEYS) do
          local id = ARGV[2 + i]
          local cur = redis.call('HGET', key, 'id')
          if cur and cur ~= id then
            out[i] = cur
          else
            redis.call('HSET', key, 'id', id, 'state', 'confirmed')
            redis.call('HDEL', key, 'pending_until_ms')
            redis.call('PEXPIRE', key, ARGV[2])
            out[i] = id
          end
        end
        return out
        """#)
}
