import ConveyorRedis

/// The Lua scripts behind every state transition (docs/PROTOCOL.md describes each one's keys, arguments and
/// effect). Each runs atomically in one round trip; `RedisScript` loads it once and calls it by SHA.
///
/// Conventions shared by all of them: `ARGV[1]` is the key prefix `P` (for the keys a script derives from an id,
/// such as the per-state sets); a `now` argument of `0` means Redis's own clock (`TIME`), so leases do not depend
/// on the workers' clocks agreeing; TTLs are seconds; times are Unix milliseconds.
enum TaskScripts {
    /// Helpers every script starts with. `P` is the key prefix.
    static let prelude = #"""
        local P = ARGV[1]
        local function int(x) return string.format('%d', x) end
        local function clock(arg)
          local n = tonumber(arg)
          if n and n > 0 then return n end
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        -- Python's datetime.isoformat() of a UTC millisecond time (civil_from_days).
        local function iso(ms)
          local s = math.floor(ms / 1000)
          local micros = (ms - s * 1000) * 1000
          local days = math.floor(s / 86400)
          local secs = s - days * 86400
          local z = days + 719468
          local era = math.floor(z / 146097)
          local doe = z - era * 146097
          local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
          local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
          local mp = math.floor((5 * doy + 2) / 153)
          local d = doy - math.floor((153 * mp + 2) / 5) + 1
          local m = mp < 10 and mp + 3 or mp - 9
          local y = yoe + era * 400
          if m <= 2 then y = y + 1 end
          return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%06d+00:00', y, m, d,
            math.floor(secs / 3600), math.floor(secs / 60) % 60, secs % 60, micros)
        end
        local function ready(s) return s == 'SUCCESS' or s == 'FAILURE' or s == 'REVOKED' end
        -- Moves id from the set of its old state to the set of its new one. The set lives as long as its newest
        -- entry; trimming entries older than the TTL is amortised over about one transition in 32.
        local function move(id, old, new, now, ttl)
          if old == new then return end
          if old then redis.call('ZREM', P .. 'state:' .. old, id) end
          local set = P .. 'state:' .. new
          redis.call('ZADD', set, int(now), id)
          redis.call('PEXPIRE', set, int(ttl * 1000))
          if now % 32 == 0 then redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. int(now - ttl * 1000)) end
        end
        -- Celery's redis backend: SETEX and PUBLISH on the key's own name.
        local function store_meta(key, json, ttl)
          if json == '' then return end
          redis.call('SET', key, json, 'EX', ttl)
          redis.call('PUBLISH', key, json)
        end
        -- The payload is the id, then a newline and the meta, so the client needs no read to learn the outcome.
        local function notify(client, id, json)
          if not client or client == '' then return end
          if json and json ~= '' then
            redis.call('PUBLISH', P .. 'notify:' .. client, id .. '\n' .. json)
          else
            redis.call('PUBLISH', P .. 'notify:' .. client, id)
          end
        end
        local function exc_meta(id, status, etype, emsg, emodule, now)
          return '{"status": "' .. status .. '", "result": {"exc_type": ' .. cjson.encode(etype) ..
            ', "exc_message": [' .. cjson.encode(emsg) .. '], "exc_module": "' .. emodule ..
            '"}, "traceback": null, "children": [], "date_done": "' .. iso(now) .. '", "task_id": ' ..
            cjson.encode(id) .. '}'
        end
        -- An outcome the script decides itself (revoked, expired, poison): record, write the meta, notify.
        local function conclude(task, meta, id, old, state, etype, emsg, reason, emodule, now, ttl, client)
          redis.call('HSET', task, 'state', state, 'finished_ms', int(now), 'error_type', etype,
            'error_message', emsg, 'reason', reason)
          redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms')
          redis.call('EXPIRE', task, ttl)
          move(id, old, state, now, ttl)
          local json = exc_meta(id, state, etype, emsg, emodule, now)
          store_meta(meta, json, ttl)
          notify(client, id, json)
        end

        """#

    /// KEYS: task, result meta, fence, tombstone; for a task with limits also rate, cap, cap wait.
    /// ARGV: P, id, worker, now, lease ms, name, queue, expires ms (0 = never), max attempts (0 = no limit), TTL,
    /// reply-to client; for a task with limits also rate interval ms (0 = none), rate tolerance ms, max running
    /// (0 = none), catch-up ms.
    /// Returns `{'run', token, attempt}`, `{'finished', state}`, `{'revoked', reason}`, `{'expired'}`,
    /// `{'leased', owner, until}`, `{'poison', attempts}`, `{'throttled', run at}` or `{'capped', first expiry}`.
    static let claim = RedisScript(
        prelude + limitsFunction + #"""
            local task, meta = KEYS[1], KEYS[2]
            local id, worker = ARGV[2], ARGV[3]
            local now = clock(ARGV[4])
            local ttl = tonumber(ARGV[10])
            local client = ARGV[11]
            local cur = redis.call('HMGET', task, 'state', 'lease_owner', 'lease_until_ms', 'attempts', 'retries',
              'received_ms')
            local state = cur[1]
            if ready(state) then return {'finished', state} end
            -- A live run decides for itself: it sees a tombstone in its heartbeat and records REVOKED.
            local untilMs = tonumber(cur[3]) or 0
            if cur[2] and untilMs > now then return {'leased', cur[2], untilMs} end
            local tomb = redis.call('GET', KEYS[4])
            if tomb then
              redis.call('HSET', task, 'name', ARGV[6], 'queue', ARGV[7])
              conclude(task, meta, id, state, 'REVOKED', 'TaskRevokedError', tomb, tomb, 'celery.exceptions', now, ttl, client)
              return {'revoked', tomb}
            end
            local expires = tonumber(ARGV[8]) or 0
            if expires > 0 and now >= expires then
              redis.call('HSET', task, 'name', ARGV[6], 'queue', ARGV[7])
              conclude(task, meta, id, state, 'REVOKED', 'TaskRevokedError', 'expired', 'expired', 'celery.exceptions', now, ttl, client)
              return {'expired'}
            end
            local attempts = (tonumber(cur[4]) or 0) + 1
            local unfinished = attempts - (tonumber(cur[5]) or 0)
            local max = tonumber(ARGV[9]) or 0
            if max > 0 and unfinished > max then
              local why = 'claimed ' .. int(unfinished) .. ' times without an outcome (limit ' .. int(max) ..
                '): the message keeps failing its workers and is dead-lettered'
              redis.call('HSET', task, 'name', ARGV[6], 'queue', ARGV[7], 'attempts', int(attempts))
              conclude(task, meta, id, state, 'FAILURE', 'PoisonMessage', why, 'poison', 'conveyor', now, ttl, client)
              return {'poison', attempts}
            end
            local cap = #KEYS >= 7 and limits(task, now, ttl) or nil
            if type(cap) == 'table' then return cap end
            local token = redis.call('INCR', KEYS[3])
            redis.call('HSET', task, 'state', 'STARTED', 'name', ARGV[6], 'queue', ARGV[7], 'worker', worker,
              'started_ms', int(now), 'attempts', int(attempts), 'lease_owner', worker, 'lease_token', int(token),
              'lease_until_ms', int(now + tonumber(ARGV[5])), 'received_ms', cur[6] or int(now))
            redis.call('EXPIRE', task, ttl)
            if cap then hold(cap, id, now + tonumber(ARGV[5])) end
            move(id, state, 'STARTED', now, ttl)
            return {'run', token, attempts}
            """#)

    /// KEYS: task, result meta.
    /// ARGV: P, id, token, state (SUCCESS, FAILURE or REVOKED), meta JSON ('' = store none), error type, error
    /// message, reply-to client, now, TTL.
    /// Returns `{'recorded'}` or `{'fenced'}` (the token is not the current lease's: nothing is written).
    static let finish = RedisScript(
        prelude + #"""
            local task = KEYS[1]
            local id, state = ARGV[2], ARGV[4]
            local cur = redis.call('HMGET', task, 'lease_token', 'state')
            if cur[1] ~= ARGV[3] then return {'fenced'} end
            local now = clock(ARGV[9])
            local ttl = tonumber(ARGV[10])
            if ARGV[6] == '' then
              redis.call('HSET', task, 'state', state, 'finished_ms', int(now))
              redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms', 'error_type', 'error_message',
                'reason')
            elseif state == 'REVOKED' then
              redis.call('HSET', task, 'state', state, 'finished_ms', int(now), 'error_type', ARGV[6],
                'error_message', ARGV[7], 'reason', ARGV[7])
              redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms')
            else
              redis.call('HSET', task, 'state', state, 'finished_ms', int(now), 'error_type', ARGV[6],
                'error_message', ARGV[7])
              redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms', 'reason')
            end
            redis.call('EXPIRE', task, ttl)
            move(id, cur[2], state, now, ttl)
            store_meta(KEYS[2], ARGV[5], ttl)
            notify(ARGV[8], id, ARGV[5])
            return {'recorded'}
            """#)

    /// KEYS: task, result meta, delayed, delayed:msg, delayed:inflight.
    /// ARGV: P, id, token, due ms, message JSON, meta JSON, error type, error message, now, TTL.
    /// Returns `{'recorded', retries}` or `{'fenced'}`.
    static let retry = RedisScript(
        prelude + #"""
            local task = KEYS[1]
            local id = ARGV[2]
            local cur = redis.call('HMGET', task, 'lease_token', 'state', 'retries')
            if cur[1] ~= ARGV[3] then return {'fenced'} end
            local now = clock(ARGV[9])
            local ttl = tonumber(ARGV[10])
            local retries = (tonumber(cur[3]) or 0) + 1
            redis.call('HSET', task, 'state', 'RETRY', 'finished_ms', int(now), 'error_type', ARGV[7],
              'error_message', ARGV[8], 'retries', int(retries))
            redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms')
            redis.call('EXPIRE', task, ttl)
            move(id, cur[2], 'RETRY', now, ttl)
            redis.call('ZADD', KEYS[3], ARGV[4], id)
            redis.call('HSET', KEYS[4], id, ARGV[5])
            redis.call('ZREM', KEYS[5], id)
            store_meta(KEYS[2], ARGV[6], ttl)
            return {'recorded', retries}
            """#)

    /// KEYS: task.
    /// ARGV: P, id, token, now, TTL.
    /// Returns `{'recorded'}` or `{'fenced'}`. The run gave its task back unfinished (a worker shutting down):
    /// state RECEIVED, the lease dropped, and the claim not counted as an attempt, since nothing failed.
    static let release = RedisScript(
        prelude + #"""
            local task = KEYS[1]
            local cur = redis.call('HMGET', task, 'lease_token', 'state', 'attempts')
            if cur[1] ~= ARGV[3] then return {'fenced'} end
            local now = clock(ARGV[4])
            local ttl = tonumber(ARGV[5])
            redis.call('HSET', task, 'state', 'RECEIVED', 'attempts', int(math.max(0, (tonumber(cur[3]) or 1) - 1)))
            redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms')
            redis.call('EXPIRE', task, ttl)
            move(ARGV[2], cur[2], 'RECEIVED', now, ttl)
            return {'recorded'}
            """#)

    /// KEYS: task, result meta.
    /// ARGV: P, id, token, fraction, message, meta JSON, now, TTL.
    /// Returns `{'recorded'}` or `{'fenced'}`.
    static let progress = RedisScript(
        prelude + #"""
            local task = KEYS[1]
            local cur = redis.call('HMGET', task, 'lease_token', 'state')
            if cur[1] ~= ARGV[3] then return {'fenced'} end
            local now = clock(ARGV[7])
            local ttl = tonumber(ARGV[8])
            redis.call('HSET', task, 'state', 'PROGRESS', 'progress', ARGV[4], 'progress_message', ARGV[5])
            redis.call('EXPIRE', task, ttl)
            move(ARGV[2], cur[2], 'PROGRESS', now, ttl)
            store_meta(KEYS[2], ARGV[6], ttl)
            return {'recorded'}
            """#)

    /// KEYS: task, result meta.
    /// ARGV: P, id, error type, error message, reason, meta JSON, name, queue, reply-to client, now, TTL.
    /// Returns `{'recorded'}`, `{'finished', state}` or `{'leased', owner, until}` (a live run elsewhere is not
    /// overwritten).
    static let fail = RedisScript(
        prelude + #"""
            local task = KEYS[1]
            local id = ARGV[2]
            local now = clock(ARGV[10])
            local ttl = tonumber(ARGV[11])
            local cur = redis.call('HMGET', task, 'state', 'lease_owner', 'lease_until_ms')
            if ready(cur[1]) then return {'finished', cur[1]} end
            local untilMs = tonumber(cur[3]) or 0
            if cur[2] and untilMs > now then return {'leased', cur[2], untilMs} end
            redis.call('HSET', task, 'state', 'FAILURE', 'finished_ms', int(now), 'error_type', ARGV[3],
              'error_message', ARGV[4], 'reason', ARGV[5])
            if ARGV[7] ~= '' then redis.call('HSET', task, 'name', ARGV[7]) end
            if ARGV[8] ~= '' then redis.call('HSET', task, 'queue', ARGV[8]) end
            redis.call('HDEL', task, 'lease_owner', 'lease_token', 'lease_until_ms')
            redis.call('EXPIRE', task, ttl)
            move(id, cur[1], 'FAILURE', now, ttl)
            store_meta(KEYS[2], ARGV[6], ttl)
            notify(ARGV[9], id, ARGV[6])
            return {'recorded'}
            """#)

    /// KEYS: task, result meta, tombstone, delayed, delayed:msg, delayed:inflight.
    /// ARGV: P, id, reason, tombstone TTL, now, TTL, reply-to client.
    /// Returns `{'revoked'}` (marked now), `{'finished', state}` or `{'running', owner}` (the tombstone stops it).
    static let revoke = RedisScript(
        prelude + #"""
            local task, meta = KEYS[1], KEYS[2]
            local id, reason = ARGV[2], ARGV[3]
            local now = clock(ARGV[5])
            local ttl = tonumber(ARGV[6])
            redis.call('SET', KEYS[3], reason, 'EX', ARGV[4])
            local cur = redis.call('HMGET', task, 'state', 'lease_owner', 'lease_until_ms')
            if ready(cur[1]) then return {'finished', cur[1]} end
            if cur[2] and (tonumber(cur[3]) or 0) > now then
              -- Wake the running worker now rather than at its next heartbeat.
              redis.call('PUBLISH', P .. 'revoke:' .. cur[2], id)
              return {'running', cur[2]}
            end
            redis.call('ZREM', KEYS[4], id)
            redis.call('HDEL', KEYS[5], id)
            redis.call('ZREM', KEYS[6], id)
            conclude(task, meta, id, cur[1], 'REVOKED', 'TaskRevokedError', reason, reason, 'celery.exceptions', now, ttl, ARGV[7])
            return {'revoked'}
            """#)

    /// KEYS: task, result meta. Returns `{1, fields}` (the task record), `{2, meta}` (only Celery's result) or
    /// `{0}`.
    static let status = RedisScript(
        #"""
        local h = redis.call('HGETALL', KEYS[1])
        if #h > 0 then return {1, h} end
        local m = redis.call('GET', KEYS[2])
        if m then return {2, m} end
        return {0}
        """#)
}
