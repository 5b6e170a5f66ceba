import ConveyorRedis

extension TaskScripts {
    // Periodic tasks: the leader lease and the per-tick guard (docs/PROTOCOL.md §8).
    //
    // One worker of the fleet, the leader, submits the ticks; the lease is a hash with a fencing token from
    // `P periodic:fence`, and every write the leader makes checks that token, so a former leader that has not yet
    // noticed its lease ran out cannot write. Each schedule's last tick is compared and set in the same script
    // that claims the next one, so even two leaders at once submit each tick once.

    /// KEYS: leader, fence. ARGV: P, worker, lease ms, token held ('' = none), now.
    /// Returns `{'acquired', token}`, `{'renewed', token}` or `{'follower', owner, remaining ms}`.
    static let periodicLead = RedisScript(
        prelude + #"""
            local leader = KEYS[1]
            local worker, lease, held = ARGV[2], tonumber(ARGV[3]), ARGV[4]
            local now = clock(ARGV[5])
            local cur = redis.call('HMGET', leader, 'owner', 'token')
            if cur[1] and cur[1] == worker and cur[2] == held then
              redis.call('HSET', leader, 'renewed_ms', int(now), 'until_ms', int(now + lease))
              redis.call('PEXPIRE', leader, int(lease))
              return {'renewed', tonumber(cur[2])}
            end
            if cur[1] then return {'follower', cur[1], redis.call('PTTL', leader)} end
            local token = redis.call('INCR', KEYS[2])
            redis.call('HSET', leader, 'owner', worker, 'token', int(token), 'acquired_ms', int(now),
              'renewed_ms', int(now), 'until_ms', int(now + lease))
            redis.call('PEXPIRE', leader, int(lease))
            return {'acquired', token}
            """#)

    /// KEYS: leader. ARGV: P, worker, token.
    /// Returns `{'resigned'}` or `{'notleader'}` (the lease is someone else's, or gone: nothing changes).
    static let periodicResign = RedisScript(
        prelude + #"""
            local cur = redis.call('HMGET', KEYS[1], 'owner', 'token')
            if cur[1] ~= ARGV[2] or cur[2] ~= ARGV[3] then return {'notleader'} end
            redis.call('DEL', KEYS[1])
            return {'resigned'}
            """#)

    /// Shared by the scripts that write a schedule's record: the fence check and the record's lifetime.
    static let periodicPrelude = #"""
        local function is_leader(leader, worker, token)
          local cur = redis.call('HMGET', leader, 'owner', 'token')
          return cur[1] == worker and cur[2] == token
        end
        -- The record lives `ttl` ms after its last write; the index of schedules lists it until then.
        local function keep(record, index, name, ttl, now)
          redis.call('PEXPIRE', record, int(ttl))
          redis.call('ZADD', index, int(now + ttl), name)
          redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. int(now))
          if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, int(ttl)) end
        end

        """#

    /// KEYS: leader, schedule record, schedules index.
    /// ARGV: P, worker, token, name, task, schedule text, queue, next ms, record TTL ms, now.
    /// Returns `{'notleader'}` or `{'planned', last tick ms or '', pending tick ms or ''}`.
    static let periodicPlan = RedisScript(
        prelude + periodicPrelude + #"""
            local record = KEYS[2]
            if not is_leader(KEYS[1], ARGV[2], ARGV[3]) then return {'notleader'} end
            local now = clock(ARGV[10])
            redis.call('HSET', record, 'name', ARGV[4], 'task', ARGV[5], 'schedule', ARGV[6], 'queue', ARGV[7],
              'next_ms', ARGV[8], 'planned_ms', int(now), 'planned_by', ARGV[2])
            keep(record, KEYS[3], ARGV[4], tonumber(ARGV[9]), now)
            local cur = redis.call('HMGET', record, 'last_tick_ms', 'pending_tick_ms')
            return {'planned', cur[1] or '', cur[2] or ''}
            """#)

    /// KEYS: leader, schedule record, schedules index.
    /// ARGV: P, worker, token, name, tick ms, task id, next ms, record TTL ms, now.
    /// Returns `{'claimed'}`, `{'done', last tick ms}` (this tick or a later one was claimed already) or
    /// `{'notleader'}`.
    static let periodicClaimTick = RedisScript(
        prelude + periodicPrelude + #"""
            local record = KEYS[2]
            if not is_leader(KEYS[1], ARGV[2], ARGV[3]) then return {'notleader'} end
            local tick = tonumber(ARGV[5])
            local last = tonumber(redis.call('HGET', record, 'last_tick_ms'))
            if last and last >= tick then return {'done', last} end
            local now = clock(ARGV[9])
            redis.call('HSET', record, 'name', ARGV[4], 'last_tick_ms', ARGV[5], 'last_id', ARGV[6],
              'pending_tick_ms', ARGV[5], 'pending_id', ARGV[6], 'next_ms', ARGV[7], 'claimed_ms', int(now),
              'claimed_by', ARGV[2])
            keep(record, KEYS[3], ARGV[4], tonumber(ARGV[8]), now)
            return {'claimed'}
            """#)

    /// KEYS: schedule record. ARGV: P, tick ms, now.
    /// Returns `{'recorded'}`, or `{'stale'}` when that tick is no longer the pending one (another leader
    /// published it again and recorded it first).
    static let periodicSubmitted = RedisScript(
        prelude + #"""
            local record = KEYS[1]
            if redis.call('HGET', record, 'pending_tick_ms') ~= ARGV[2] then return {'stale'} end
            local now = clock(ARGV[3])
            local id = redis.call('HGET', record, 'pending_id')
            redis.call('HDEL', record, 'pending_tick_ms', 'pending_id')
            redis.call('HSET', record, 'last_run_ms', int(now), 'last_run_id', id or '')
            redis.call('HINCRBY', record, 'submitted', 1)
            return {'recorded'}
            """#)
}
