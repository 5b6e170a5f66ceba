import ConveyorRedis

/// The generators' scripts (docs/PROTOCOL.md, "Generators"). Item `i` (from 0) is the stream entry `0-<i+1>`, so
/// an entry id says which item it is, and a generator run again after a crash cannot add an item twice: each script
/// compares the index with the stream's last entry instead of trusting the caller.
enum StreamScripts {
    /// The number after the dash of the stream's last entry id: the items stored so far (the marker, when there is
    /// one, comes last and is never followed by more).
    static let lastSequence = #"""
        local function last_sequence(key)
          local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
          if top[1] then return tonumber(string.match(top[1][1], '%-(%d+)$')) or 0 end
          return 0
        end

        """#

    /// ``TaskScripts/finish`` after its prelude: what a generator's finish does once its marker is written.
    static let finishBody = String(TaskScripts.finish.source.dropFirst(TaskScripts.prelude.count))

    /// KEYS: task, stream, read position.
    /// ARGV: P, id, token, index of the first item, TTL, then one JSON text per item.
    /// Returns `{'appended', stored, consumed}` (items in the stream now, the consumer's recorded position),
    /// `{'fenced'}` (the token is not the current lease: nothing written) or `{'gap', stored}` (the first item would
    /// leave a hole: nothing of it or after it written).
    static let append = RedisScript(
        lastSequence + #"""
            if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[3] then return {'fenced'} end
            local last = last_sequence(KEYS[2])
            local seq = tonumber(ARGV[4])
            for i = 6, #ARGV do
              seq = seq + 1
              if seq > last + 1 then return {'gap', last} end
              -- An item a previous run of the generator already stored is skipped, not added twice.
              if seq == last + 1 then
                redis.call('XADD', KEYS[2], string.format('0-%d', seq), 'item', ARGV[i])
                last = seq
              end
            end
            redis.call('EXPIRE', KEYS[2], ARGV[5])
            return {'appended', last, tonumber(redis.call('GET', KEYS[3])) or 0}
            """#)

    /// KEYS: task, result meta, stream.
    /// ARGV: as ``TaskScripts/finish`` (P, id, token, state, meta JSON, error type, error message, reply-to client,
    /// now, TTL).
    /// Appends the end marker `0-<count+1>` (`end` = the state, `count`, and for FAILURE or REVOKED `error_type` and
    /// `error_message`), records `items` = count in the task record, adds `"items": count` to a FAILURE or REVOKED
    /// meta's `result` object, then does what ``TaskScripts/finish`` does. Returns `{'recorded'}` or `{'fenced'}`.
    static let finish = RedisScript(
        TaskScripts.prelude + lastSequence + #"""
            if redis.call('HGET', KEYS[1], 'lease_token') ~= ARGV[3] then return {'fenced'} end
            local count = last_sequence(KEYS[3])
            local marker = string.format('0-%d', count + 1)
            if ARGV[4] == 'SUCCESS' then
              redis.call('XADD', KEYS[3], marker, 'end', ARGV[4], 'count', int(count))
            else
              redis.call('XADD', KEYS[3], marker, 'end', ARGV[4], 'count', int(count), 'error_type', ARGV[6],
                'error_message', ARGV[7])
              -- The meta's result object closes right before its traceback; a quote inside a JSON string is
              -- escaped, so this is the first match.
              local at = string.find(ARGV[5], '}, "traceback"', 1, true)
              if at then
                ARGV[5] = string.sub(ARGV[5], 1, at - 1) .. ', "items": ' .. int(count) .. string.sub(ARGV[5], at)
              end
            end
            redis.call('EXPIRE', KEYS[3], ARGV[10])
            redis.call('HSET', KEYS[1], 'items', int(count))

            """# + finishBody)

    /// KEYS: read position. ARGV: P, position, TTL.
    /// Raises the recorded position to `position` (never lowers it) and publishes the new value on the key's own
    /// name. Returns the position now recorded.
    static let read = RedisScript(
        #"""
        local cur = tonumber(redis.call('GET', KEYS[1])) or 0
        local pos = tonumber(ARGV[2])
        if pos > cur then
          redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
          redis.call('PUBLISH', KEYS[1], ARGV[2])
          return pos
        end
        return cur
        """#)
}
