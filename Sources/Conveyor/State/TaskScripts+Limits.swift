import ConveyorRedis

extension TaskScripts {
    /// The rate limit and concurrency cap step of `claim` (docs/PROTOCOL.md, "Limits"), for a claim given
    /// KEYS[5..7] (rate, cap, cap wait) and ARGV[12..15] (interval ms, tolerance ms, max running, catch-up ms).
    ///
    /// `limits` returns a reply table when the task must wait (`throttled`, `capped`), the cap key when the claim is
    /// to take a slot, or false. The cap is checked first and taken last (`hold`, after the token), so a throttled
    /// task holds no slot and a capped one uses no rate slot. A rate slot, once given, is kept in the task record
    /// (`rate_at_ms`) until a run uses it: a redelivered or promoted message is never counted twice. The rate key
    /// keeps two times: `tat`, where the schedule of slots has reached, and `run`, the same for the runs that
    /// happened, which keeps runs spaced when returns from the delay set come back late and together.
    static let limitsFunction = #"""
        local function limits(task, now, ttl)
          local id = ARGV[2]
          local capKey, capMax = KEYS[6], tonumber(ARGV[14]) or 0
          if capMax > 0 then
            redis.call('ZREMRANGEBYSCORE', capKey, '-inf', int(now))
            if not redis.call('ZSCORE', capKey, id) and redis.call('ZCARD', capKey) >= capMax then
              local first = redis.call('ZRANGE', capKey, 0, 0, 'WITHSCORES')
              return {'capped', int(tonumber(first[2]) or now)}
            end
          end
          local interval = tonumber(ARGV[12]) or 0
          if interval > 0 then
            local tol, allow = tonumber(ARGV[13]), tonumber(ARGV[15]) or 1000
            local state = redis.call('HMGET', KEYS[5], 'tat', 'run')
            local tat = math.max(tonumber(state[1]) or now, now)
            local run = math.max(tonumber(state[2]) or now, now)
            local reserved = tonumber(redis.call('HGET', task, 'rate_at_ms'))
            -- Times are whole milliseconds: a time within the current one is now (else a limit of more than
            -- 1000/s would refuse the second claim of every millisecond).
            if reserved and reserved >= now + 1 then return {'throttled', int(reserved)} end
            local due = reserved or (tat - tol)
            local function save()
              redis.call('HSET', KEYS[5], 'tat', string.format('%.3f', tat), 'run', string.format('%.3f', run))
              -- A minute past the state's last time, not a second: a caller whose clock lags Redis's (or a
              -- test's fixed clock on a slow machine) must not see the state vanish between two claims.
              redis.call('PEXPIRE', KEYS[5], int(math.ceil(math.max(tat, run) - now) + 60000))
            end
            if (due < now + 1 and run - tol - allow < now + 1) or (not reserved and run - tol < now + 1) then
              -- Its slot has come and the runs keep their spacing (catching up at most `allow`), or it is new and
              -- the runs are behind their schedule (returns from the delay set are late): it runs now.
              run = run + interval
              if not reserved then tat = math.max(tat, run) end
              save()
              if reserved then redis.call('HDEL', task, 'rate_at_ms') end
            else
              -- A new task, or one back late with others (a backlog delayed its return) that would bunch the runs:
              -- it takes the next slot after both the schedule and the runs; a late one's old slot was used by
              -- the tasks that ran meanwhile.
              local base = math.max(tat, run)
              local at = math.max(math.ceil(base - tol), now + 1)
              tat = base + interval
              save()
              redis.call('HSET', task, 'name', ARGV[6], 'queue', ARGV[7], 'rate_at_ms', int(at))
              redis.call('EXPIRE', task, ttl)
              return {'throttled', int(at)}
            end
          end
          if capMax > 0 then return capKey end
          return false
        end
        -- Takes (or renews) the run's slot: member = task id, score = when it lapses without renewal.
        local function hold(key, id, untilMs)
          redis.call('ZADD', key, int(untilMs), id)
          local need = untilMs - clock(ARGV[4]) + 60000
          if redis.call('PTTL', key) < need then redis.call('PEXPIRE', key, int(need)) end
          redis.call('ZREM', KEYS[7], id)
        end

        """#

    /// KEYS: delayed, delayed:msg, delayed:inflight; for a capped task also cap, cap wait.
    /// ARGV: P, id, due ms, message JSON; for a capped task also now, max running.
    /// Parks a message that may not run yet in the delay set. A capped one also joins the pool's wait list (kept
    /// in its first place if already there), unless a slot freed since its claim: then it is due at once.
    /// Returns the due time.
    static let park = RedisScript(
        prelude + #"""
            local id = ARGV[2]
            local due = tonumber(ARGV[3])
            if #KEYS >= 5 then
              local now = clock(ARGV[5])
              redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', int(now))
              if redis.call('ZCARD', KEYS[4]) < tonumber(ARGV[6]) then
                due = now
                redis.call('ZREM', KEYS[5], id)
              else
                redis.call('ZADD', KEYS[5], 'NX', int(now), id)
                redis.call('PEXPIRE', KEYS[5], 86400000)
              end
            end
            redis.call('ZADD', KEYS[1], int(due), id)
            redis.call('HSET', KEYS[2], id, ARGV[4])
            redis.call('ZREM', KEYS[3], id)
            return int(due)
            """#)

    /// KEYS: cap, cap wait, task, delayed. ARGV: P, id, token, max running, now.
    /// A run that took a slot ended: frees the slot unless another run of the task holds the lease now, then makes
    /// one waiter due at once per free slot (oldest first). Returns the number woken.
    static let capRelease = RedisScript(
        prelude + #"""
            local id = ARGV[2]
            local now = clock(ARGV[5])
            local holder = redis.call('HGET', KEYS[3], 'lease_token')
            if holder and holder ~= ARGV[3] then return 0 end
            redis.call('ZREM', KEYS[1], id)
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now))
            local free = tonumber(ARGV[4]) - redis.call('ZCARD', KEYS[1])
            local woken = 0
            while free > 0 do
              local waiter = redis.call('ZPOPMIN', KEYS[2])
              if #waiter == 0 then break end
              if redis.call('ZSCORE', KEYS[4], waiter[1]) then
                redis.call('ZADD', KEYS[4], int(now), waiter[1])
                free = free - 1
                woken = woken + 1
              end
            end
            return woken
            """#)

    /// ARGV: P, now, lease ms, then pairs of pool and task id.
    /// Extends the slots the running tasks hold (only existing ones: a slot that lapsed is not taken back here).
    /// Returns the number extended.
    static let capRenew = RedisScript(
        prelude + #"""
            local now = clock(ARGV[2])
            local untilMs = now + tonumber(ARGV[3])
            local n = 0
            for i = 4, #ARGV - 1, 2 do
              local key = P .. 'cap:' .. ARGV[i]
              if redis.call('ZSCORE', key, ARGV[i + 1]) then
                redis.call('ZADD', key, int(untilMs), ARGV[i + 1])
                if redis.call('PTTL', key) < untilMs - now + 60000 then
                  redis.call('PEXPIRE', key, int(untilMs - now + 60000))
                end
                n = n + 1
              end
            end
            return n
            """#)
}
