import ConveyorRedis

/// The Lua scripts behind every change of an actor's registry record (docs/PROTOCOL.md, "Actors"). `ARGV[1]` is
/// the key prefix `P`, as in ``TaskScripts``.
enum ActorScripts {
    /// Ends an actor for good (killed or dead): status and reason, the name freed, out of `P actors`, the record
    /// kept `ttl` seconds so callers still learn why, the snapshot dropped, and the event published.
    static let endFunction = #"""
        local P = ARGV[1]
        local function finish(key, id, status, reason, ttl)
          local ns = redis.call('HGET', key, 'namespace') or ''
          local name = redis.call('HGET', key, 'name') or ''
          redis.call('HSET', key, 'status', status, 'reason', reason)
          if name ~= '' then
            local nameKey = P .. 'actor-name:' .. ns .. ':' .. name
            if redis.call('GET', nameKey) == id then redis.call('DEL', nameKey) end
          end
          redis.call('SREM', P .. 'actors', id)
          redis.call('EXPIRE', key, ttl)
          redis.call('DEL', P .. 'actor-snapshot:' .. id)
          redis.call('PUBLISH', P .. 'actor-events', status .. ' ' .. id)
        end

        """#

    /// KEYS: actor record, name key, actors set.
    /// ARGV: P, id, namespace, name ('' for none), type, getIfExists (1/0), max restarts, lifetime, owner, options
    /// JSON, arguments JSON, now ms.
    /// Returns `{'created', id}`, `{'existing', id, type}` or `{'taken', id, type}`.
    static let spawn = RedisScript(
        #"""
        local P = ARGV[1]
        local id, ns, name = ARGV[2], ARGV[3], ARGV[4]
        if name ~= '' then
          local existing = redis.call('GET', KEYS[2])
          if existing then
            local key = P .. 'actor:' .. existing
            local status = redis.call('HGET', key, 'status')
            if status and status ~= 'killed' and status ~= 'dead' then
              local t = redis.call('HGET', key, 'type') or ''
              if ARGV[6] == '1' then return {'existing', existing, t} end
              return {'taken', existing, t}
            end
          end
        end
        redis.call('HSET', KEYS[1], 'namespace', ns, 'name', name, 'type', ARGV[5], 'status', 'pending', 'host', '',
          'restarts', '0', 'max_restarts', ARGV[7], 'lifetime', ARGV[8], 'owner', ARGV[9], 'options', ARGV[10],
          'args', ARGV[11], 'created_ms', ARGV[12], 'calls', '0')
        if name ~= '' then redis.call('SET', KEYS[2], id) end
        redis.call('SADD', KEYS[3], id)
        return {'created', id}
        """#)

    /// KEYS: actor record, snapshot. ARGV: P, id, host, now ms, record TTL after death (s).
    /// A host takes the actor on: a different previous host counts as a restart (beyond `max_restarts` the actor
    /// is dead). Returns `{'host', restarts, args JSON, snapshot or ''}`, `{'killed'}`, `{'dead', reason}` or
    /// `{'missing'}`.
    static let host = RedisScript(
        endFunction + #"""
            local key = KEYS[1]
            if redis.call('EXISTS', key) == 0 then return {'missing'} end
            local status = redis.call('HGET', key, 'status')
            if status == 'killed' then return {'killed', redis.call('HGET', key, 'reason') or ''} end
            if status == 'dead' then return {'dead', redis.call('HGET', key, 'reason') or ''} end
            local previous = redis.call('HGET', key, 'host') or ''
            local restarts = tonumber(redis.call('HGET', key, 'restarts') or '0')
            if previous ~= ARGV[3] then
              if previous ~= '' then
                restarts = restarts + 1
                local max = tonumber(redis.call('HGET', key, 'max_restarts') or '0')
                if max >= 0 and restarts > max then
                  local reason = 'its host ' .. previous .. ' died and maxRestarts (' .. max .. ') is used up'
                  redis.call('HSET', key, 'restarts', restarts)
                  finish(key, ARGV[2], 'dead', reason, tonumber(ARGV[5]))
                  return {'dead', reason}
                end
              end
              redis.call('HSET', key, 'host', ARGV[3], 'restarts', restarts, 'hosted_ms', ARGV[4])
            end
            redis.call('HSET', key, 'status', 'alive')
            return {'host', tostring(restarts), redis.call('HGET', key, 'args') or 'null',
              redis.call('GET', KEYS[2]) or ''}
            """#)

    /// KEYS: actor record, snapshot, then one result key per call. ARGV: P, host, result TTL (s), has snapshot
    /// (1/0), snapshot JSON, then per call: call id, meta JSON, reply-to client ('' for none).
    /// Records the outcomes of one or more calls (and the snapshot taken after the last) if `host` still hosts the
    /// actor, and notifies each caller. Returns `'recorded'` or `'fenced'` (another host took over: nothing
    /// written).
    static let record = RedisScript(
        #"""
        local P = ARGV[1]
        if redis.call('HGET', KEYS[1], 'host') ~= ARGV[2] then return 'fenced' end
        if ARGV[4] == '1' then redis.call('SET', KEYS[2], ARGV[5]) end
        local n = #KEYS - 2
        for i = 1, n do
          local a = 5 + (i - 1) * 3
          redis.call('SET', KEYS[i + 2], ARGV[a + 2], 'EX', ARGV[3])
          if ARGV[a + 3] ~= '' then
            redis.call('PUBLISH', P .. 'notify:' .. ARGV[a + 3], ARGV[a + 1] .. '\n' .. ARGV[a + 2])
          end
        end
        redis.call('HINCRBY', KEYS[1], 'calls', n)
        return 'recorded'
        """#)

    /// KEYS: actor record. ARGV: P, id, status (`killed` or `dead`), reason, record TTL (s).
    /// Returns `'ended'`, `'already'` (it had ended before) or `'missing'`.
    static let end = RedisScript(
        endFunction + #"""
            if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
            local status = redis.call('HGET', KEYS[1], 'status')
            if status == 'killed' or status == 'dead' then return 'already' end
            finish(KEYS[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]))
            return 'ended'
            """#)

    /// KEYS: actor record. ARGV: P, host. A host leaving gracefully: the next host's takeover is no restart.
    /// Returns 1 if released, 0 if `host` did not host it.
    static let release = RedisScript(
        #"""
        if redis.call('HGET', KEYS[1], 'host') ~= ARGV[2] then return 0 end
        local status = redis.call('HGET', KEYS[1], 'status')
        if status == 'alive' then redis.call('HSET', KEYS[1], 'status', 'pending') end
        redis.call('HSET', KEYS[1], 'host', '')
        return 1
        """#)

    /// KEYS: result key. ARGV: P, call id, meta JSON, result TTL (s), reply-to client ('' for none).
    /// Records the refusal of a call to an ended actor (whoever hosts it) and notifies the caller.
    static let refuse = RedisScript(
        #"""
        redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
        if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[1] .. 'notify:' .. ARGV[5], ARGV[2] .. '\n' .. ARGV[3]) end
        return 'recorded'
        """#)

    /// KEYS: FIFO list. ARGV: P, max size (0 = none), item. Returns the new length, or -1 when full.
    static let fifoPut = RedisScript(
        #"""
        local max = tonumber(ARGV[2])
        if max > 0 and redis.call('LLEN', KEYS[1]) >= max then return -1 end
        return redis.call('RPUSH', KEYS[1], ARGV[3])
        """#)
}
