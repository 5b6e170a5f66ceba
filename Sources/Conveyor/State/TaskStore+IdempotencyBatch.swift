import ConveyorRedis

extension TaskStore {
    /// Reserves many idempotency keys in one pipelined round trip: `reserveIdempotency` once per key, as
    /// ``reserveIdempotencyKey(_:candidate:pending:ttl:now:)`` does for one.
    ///
    /// Each call is its own script run (Redis does them one after another, each atomic), so the outcome for a key
    /// is exactly the single call's; the batch only saves the round trips.
    ///
    /// - Parameter requests: each key (at most once) with a new candidate task id.
    /// - Returns: one reservation per request, in order.
    /// - Throws: the ``RedisError`` of a call, or ``TaskStoreError/unexpectedReply(script:reply:)``. After a
    ///   failure some keys may be reserved; their reservations lapse after `pending` and the next submit with such
    ///   a key takes it over.
    func reserveIdempotencyKeys(
        _ requests: [(key: String, candidate: String)], pending: Duration, ttl: Duration, now: Int64? = nil
    ) async throws -> [IdempotencyReservation] {
        let calls = requests.map { key, candidate in
            ScriptCall(
                keys: [self.keys.idempotency(key)],
                arguments: [self.keys.prefix, candidate, now ?? 0, pending.wholeMilliseconds, ttl.wholeMilliseconds])
        }
        return try await runPipelined(TaskScripts.reserveIdempotency, calls).map(Self.reservation)
    }

    /// Confirms many published tasks' idempotency keys in one pipelined round trip (`confirmIdempotency` once per
    /// key, as ``confirmIdempotencyKey(_:id:ttl:)``).
    ///
    /// - Returns: for each key, the id it names (its `id`, unless the reservation was released and taken anew).
    /// - Throws: the ``RedisError`` of a call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    @discardableResult
    func confirmIdempotencyKeys(_ published: [(key: String, id: String)], ttl: Duration) async throws -> [String] {
        let calls = published.map { key, id in
            ScriptCall(keys: [self.keys.idempotency(key)], arguments: [self.keys.prefix, id, ttl.wholeMilliseconds])
        }
        return try await runPipelined(TaskScripts.confirmIdempotency, calls).map { reply in
            guard let named = reply.string else {
                throw TaskStoreError.unexpectedReply(script: "confirmIdempotency", reply: reply.description)
            }
            return named
        }
    }

    /// Drops many pending reservations (``releaseIdempotencyKey(_:id:)`` for each pair), pipelined.
    ///
    /// - Returns: how many were dropped.
    /// - Throws: the ``RedisError`` of a call.
    @discardableResult
    func releaseIdempotencyKeys(_ reservations: [(key: String, id: String)]) async throws -> Int {
        let calls = reservations.map { key, id in
            ScriptCall(keys: [self.keys.idempotency(key)], arguments: [self.keys.prefix, id])
        }
        return try await runPipelined(TaskScripts.releaseIdempotency, calls).reduce(0) { $0 + ($1.int ?? 0) }
    }

    /// One `EVALSHA` of a pipelined batch.
    struct ScriptCall {
        var keys: [any RedisArgument]
        var arguments: [any RedisArgument]
    }

    /// Runs `script` once per call, all `EVALSHA`s written as one pipeline; the replies in the order of `calls`.
    ///
    /// A script this process has not loaded yet is loaded by the first call (``RedisCommandSender/evalScript``);
    /// calls that meet `NOSCRIPT` (Redis restarted or flushed its scripts) are sent again after one of them
    /// reloads it.
    func runPipelined(_ script: RedisScript, _ calls: [ScriptCall]) async throws -> [RESPValue] {
        var replies = [RESPValue](repeating: .null, count: calls.count)
        var todo = Array(calls.indices)
        for _ in 0..<2 where !todo.isEmpty {
            if script.sha == nil || todo.count == 1 {
                replies[todo[0]] = try await run(script, keys: calls[todo[0]].keys, arguments: calls[todo[0]].arguments)
                todo.removeFirst()
            }
            guard let sha = script.sha, !todo.isEmpty else { continue }
            let commands = todo.map { index in
                var command = RedisCommand("EVALSHA", sha, calls[index].keys.count)
                command.append(contentsOf: calls[index].keys)
                command.append(contentsOf: calls[index].arguments)
                return command
            }
            let results = try await redis.send(batch: commands, timeout: nil)
            var missing: [Int] = []
            for (index, result) in zip(todo, results) {
                switch result {
                case .success(let reply): replies[index] = reply
                case .failure(.noScript): missing.append(index)
                case .failure(let error): throw error
                }
            }
            todo = missing
            // The next round's first call reloads the script (evalScript's NOSCRIPT path).
            if let first = todo.first {
                replies[first] = try await run(script, keys: calls[first].keys, arguments: calls[first].arguments)
                todo.removeFirst()
            }
        }
        guard todo.isEmpty else { throw RedisError.noScript }
        return replies
    }
}
