import ConveyorRedis

extension TaskScripts {
    /// KEYS: idem:<key> × N. ARGV: P, now, pending ms, TTL ms, candidate id × N (one per key, in order).
    /// `reserveIdempotency` for each key in turn, in one call: returns N replies, each exactly the single script's
    /// (`{'reserved', id}`, `{'confirmed', id}` or `{'pending', id, until ms}`).
    static let reserveIdempotencyMany = RedisScript(
        prelude + reserveFunction + #"""
            local now = clock(ARGV[2])
            local untilMs = int(now + tonumber(ARGV[3]))
            local out = {}
            for i, key in ipairs(KEYS) do
              out[i] = reserve(key, ARGV[4 + i], now, untilMs, ARGV[4])
            end
            return out
            """#)
}
