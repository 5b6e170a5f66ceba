import ConveyorRedis

extension TaskScripts {
    /// KEYS: delayed, delayed:msg, delayed:inflight. ARGV: P, id, due ms, message JSON.
    /// One message per id: scheduling an id again replaces its message and due time.
    static let schedule = RedisScript(
        #"""
        redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
        redis.call('ZREM', KEYS[3], ARGV[2])
        return 1
        """#)

    /// KEYS: delayed, delayed:msg, delayed:inflight. ARGV: P, now, lease ms, limit.
    /// Takes up to `limit` ids: first promotions whose lease ran out (their promoter died before acking), then due
    /// ids; each moves to `inflight` with score now + lease. Returns `{next, id1, message1, id2, message2, …}`, where
    /// `next` is the ms from now until the earliest id left in either set is due (`-1`: both are empty), so a
    /// promoter sleeps until then rather than a whole polling interval.
    static let promoteDue = RedisScript(
        prelude + #"""
            local now = clock(ARGV[2])
            local untilMs = int(now + tonumber(ARGV[3]))
            local limit = tonumber(ARGV[4])
            local out = {-1}
            local function take(id)
              local msg = redis.call('HGET', KEYS[2], id)
              if msg then
                redis.call('ZADD', KEYS[3], untilMs, id)
                out[#out + 1] = id
                out[#out + 1] = msg
              else
                redis.call('ZREM', KEYS[3], id)
              end
            end
            local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', int(now), 'LIMIT', 0, limit)
            for _, id in ipairs(stale) do take(id) end
            if #stale < limit then
              local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now), 'LIMIT', 0, limit - #stale)
              for _, id in ipairs(due) do
                redis.call('ZREM', KEYS[1], id)
                take(id)
              end
            end
            local earliest
            for _, key in ipairs({KEYS[1], KEYS[3]}) do
              local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
              local score = tonumber(first[2])
              if score and (not earliest or score < earliest) then earliest = score end
            end
            if earliest then out[1] = math.max(0, math.ceil(earliest - now)) end
            return out
            """#)

    /// KEYS: delayed, delayed:msg, delayed:inflight. ARGV: P, ids….
    /// After the broker confirmed the publishes: drops the promotions. A message is kept when its id was
    /// scheduled again meanwhile (a fast retry). Returns how many promotions were still in flight.
    static let ackPromoted = RedisScript(
        #"""
        local n = 0
        for i = 2, #ARGV do
          local id = ARGV[i]
          n = n + redis.call('ZREM', KEYS[3], id)
          if not redis.call('ZSCORE', KEYS[1], id) then redis.call('HDEL', KEYS[2], id) end
        end
        return n
        """#)
}
