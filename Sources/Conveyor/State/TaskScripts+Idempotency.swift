import ConveyorRedis

extension TaskScripts {
    /// KEYS: idem:<key>. ARGV: P, candidate id, now, pending ms, TTL ms.
    /// Returns `{'reserved', id}` when the caller is to publish task `id` (a new reservation with the candidate
    /// id, or a takeover of a reservation whose producer did not confirm in time, keeping its id),
    /// `{'confirmed', id}` when the task was published, `{'pending', id, until ms}` while another producer
    /// publishes it.
    static let reserveIdempotency = RedisScript(
        prelude + #"""
            local now = clock(ARGV[3])
            local untilMs = int(now + tonumber(ARGV[4]))
            local cur = redis.call('HMGET', KEYS[1], 'id', 'state', 'pending_until_ms')
            if not cur[1] then
              redis.call('HSET', KEYS[1], 'id', ARGV[2], 'state', 'pending', 'pending_until_ms', untilMs)
              redis.call('PEXPIRE', KEYS[1], ARGV[5])
              return {'reserved', ARGV[2]}
            end
            if cur[2] == 'confirmed' then return {'confirmed', cur[1]} end
            local pendingUntil = tonumber(cur[3]) or 0
            if pendingUntil > now then return {'pending', cur[1], pendingUntil} end
            redis.call('HSET', KEYS[1], 'pending_until_ms', untilMs)
            return {'reserved', cur[1]}
            """#)

    /// KEYS: idem:<key>. ARGV: P, id, TTL ms.
    /// After the broker (or the delay set) took task `id`: the key names it for the full TTL from now. A key that
    /// vanished meanwhile is written again. Returns the id the key names (another id only when the reservation
    /// was released and reserved anew in between).
    static let confirmIdempotency = RedisScript(
        #"""
        local cur = redis.call('HGET', KEYS[1], 'id')
        if cur and cur ~= ARGV[2] then return cur end
        redis.call('HSET', KEYS[1], 'id', ARGV[2], 'state', 'confirmed')
        redis.call('HDEL', KEYS[1], 'pending_until_ms')
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return ARGV[2]
        """#)

    /// KEYS: idem:<key>. ARGV: P, id.
    /// After a submit failed before anything was published: drops the caller's pending reservation, so the key
    /// is free at once. Returns 1 when it was dropped.
    static let releaseIdempotency = RedisScript(
        #"""
        local cur = redis.call('HMGET', KEYS[1], 'id', 'state')
        if cur[1] == ARGV[2] and cur[2] == 'pending' then return redis.call('DEL', KEYS[1]) end
        return 0
        """#)
}
