import ConveyorRedis

extension TaskScripts {
    /// The reserve step shared by `reserveIdempotency` and `reserveIdempotencyMany` (docs/PROTOCOL.md §7).
    ///
    /// An idempotency key is one string, `pending:<until ms>:<id>` or `confirmed:<id>`, so the common case (a new
    /// key) is a single `SET … NX GET` and a confirmation is a plain `SET` a producer can pipeline: measured alone,
    /// a key costs Redis about half the CPU the three-field hash it replaced did.
    static let reserveFunction = #"""
        local function reserve(key, candidate, now, untilMs, ttl)
          local cur = redis.call('SET', key, 'pending:' .. untilMs .. ':' .. candidate, 'NX', 'PX', ttl, 'GET')
          if not cur then return {'reserved', candidate} end
          local confirmed = string.match(cur, '^confirmed:(.+)$')
          if confirmed then return {'confirmed', confirmed} end
          local pendingUntil, id = string.match(cur, '^pending:(%d+):(.+)$')
          if not id then return redis.error_reply('idempotency key ' .. key .. ' holds an unknown value') end
          pendingUntil = tonumber(pendingUntil)
          if pendingUntil > now then return {'pending', id, pendingUntil} end
          redis.call('SET', key, 'pending:' .. untilMs .. ':' .. id, 'KEEPTTL')
          return {'reserved', id}
        end

        """#

    /// KEYS: idem:<key>. ARGV: P, candidate id, now, pending ms, TTL ms.
    /// Returns `{'reserved', id}` when the caller is to publish task `id` (a new reservation with the candidate
    /// id, or a takeover of a reservation whose producer did not confirm in time, keeping its id),
    /// `{'confirmed', id}` when the task was published, `{'pending', id, until ms}` while another producer
    /// publishes it.
    static let reserveIdempotency = RedisScript(
        prelude + reserveFunction + #"""
            local now = clock(ARGV[3])
            return reserve(KEYS[1], ARGV[2], now, int(now + tonumber(ARGV[4])), ARGV[5])
            """#)

    /// KEYS: idem:<key>. ARGV: P, id.
    /// After a submit failed before anything was published: drops the caller's pending reservation, so the key
    /// is free at once. Returns 1 when it was dropped.
    static let releaseIdempotency = RedisScript(
        #"""
        local cur = redis.call('GET', KEYS[1])
        if cur and string.match(cur, '^pending:%d+:(.+)$') == ARGV[2] then return redis.call('DEL', KEYS[1]) end
        return 0
        """#)
}
