import ConveyorRedis

extension TaskStore {
    /// Keys per `reserveIdempotencyMany` call: bounds how long one call holds Redis
    /// (about a millisecond); bigger batches send several calls in one pipeline.
    static let idempotencyChunk = 500

    /// Reserves many idempotency keys in one round trip (`reserveIdempotencyMany`, a call per
    /// ``idempotencyChunk`` keys, pipelined): for each key exactly what
    /// ``reserveIdempotencyKey(_:candidate:pending:ttl:now:)`` gives for one.
    ///
    /// - Parameter requests: each key (at most once) with a new candidate task id.
    /// - Returns: one reservation per request, in order.
    /// - Throws: the ``RedisError`` of a call, or ``TaskStoreError/unexpectedReply(script:reply:)``. After a
    ///   failure some keys may be reserved; their reservations lapse after `pending` and the next submit with such
    ///   a key takes it over.
    func reserveIdempotencyKeys(
        _ requests: [(key: String, candidate: String)], pending: Duration, ttl: Duration, now: Int64? = nil
    ) async throws -> [IdempotencyReservation] {
        let calls = Self.chunks(requests.count).map { range in
            var arguments: [any RedisArgument] = [
                keys.prefix, now ?? 0, pending.wholeMilliseconds, ttl.wholeMilliseconds,
            ]
            arguments += requests[range].map { $0.candidate as any RedisArgument }
            return ScriptCall(keys: requests[range].map { self.keys.idempotency($0.key) }, arguments: arguments)
        }
        let replies = try await runPipelined(TaskScripts.reserveIdempotencyMany, calls)
        return try zip(Self.chunks(requests.count), replies).flatMap { range, reply in
            try Self.elements(reply, count: range.count, script: "reserveIdempotencyMany").map(Self.reservation)
        }
    }

    /// Confirms many published tasks' idempotency keys in one round trip: a pipeline of the `SET`s
    /// ``confirmIdempotencyKey(_:id:ttl:)`` sends for one.
    ///
    /// - Throws: the first ``RedisError`` among the replies.
    func confirmIdempotencyKeys(_ published: [(key: String, id: String)], ttl: Duration) async throws {
        guard !published.isEmpty else { return }
        let results = try await redis.send(
            batch: published.map { confirmation($0.key, id: $0.id, ttl: ttl) }, timeout: nil)
        for result in results { _ = try result.get() }
    }

    /// `0..<count` cut in ranges of ``idempotencyChunk``.
    static func chunks(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: idempotencyChunk).map { $0..<min($0 + idempotencyChunk, count) }
    }

    /// The elements of an array reply that must hold `count` of them.
    static func elements(_ reply: RESPValue, count: Int, script: String) throws -> [RESPValue] {
        guard let elements = reply.array, elements.count == count else {
            throw TaskStoreError.unexpectedReply(script: script, reply: reply.description)
        }
        return elements
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
