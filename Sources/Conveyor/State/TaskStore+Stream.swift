import ConveyorRedis

/// The answer of ``TaskStore/appendItems(_:token:firstIndex:items:)``.
public enum StreamAppendOutcome: Sendable, Hashable {
    /// `stored` items are in the stream now (items a previous run already stored were skipped); `consumed` is the
    /// recording consumer's position.
    case appended(stored: Int, consumed: Int)
    /// The token is no longer the task's lease: nothing was written; the run should stop.
    case fenced
    /// The first item would leave a hole after the `stored` items: nothing was written.
    case gap(stored: Int)
}

extension TaskStore {
    /// Appends a generator's items `firstIndex...` to its stream `P stream:<id>` (entry `0-<index+1>` each) and
    /// renews the stream's TTL, in one script. Items the stream already holds (a run replayed after a crash) are
    /// skipped. Nothing is written unless `token` is still the task's lease.
    ///
    /// - Parameter items: each item's JSON text, in order.
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func appendItems(
        _ id: String, token: Int64, firstIndex: Int, items: [[UInt8]]
    ) async throws -> StreamAppendOutcome {
        var arguments: [any RedisArgument] = [keys.prefix, id, token, firstIndex, resultTTLSeconds]
        arguments.reserveCapacity(arguments.count + items.count)
        for item in items { arguments.append(item) }
        let reply = try await run(
            StreamScripts.append, keys: [keys.task(id), keys.stream(id), keys.streamRead(id)], arguments: arguments)
        let script = "stream-append"
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.appended:
            return .appended(
                stored: Int(try ScriptReply.int(fields, 1, script: script)),
                consumed: Int(try ScriptReply.int(fields, 2, script: script)))
        case ScriptReply.fenced: return .fenced
        case ScriptReply.gap: return .gap(stored: Int(try ScriptReply.int(fields, 1, script: script)))
        default: throw ScriptReply.unexpected(fields, script: script)
        }
    }

    /// Records how a generator's run ended, as ``finish(_:token:outcome:replyTo:storeResult:extended:now:)`` does,
    /// and in the same script appends the stream's end marker after its last item: `end` = the state and `count`,
    /// plus `error_type` and `error_message` for FAILURE and REVOKED. A SUCCESS's result is the item count.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func finishStream(
        _ id: String, token: Int64, outcome: TaskOutcome, replyTo: String? = nil, storeResult: Bool = true,
        extended: CeleryResultMeta.Extended? = nil, now: Int64? = nil
    ) async throws -> RecordOutcome {
        try await record(
            outcome, of: id, token: token, script: StreamScripts.finish,
            keys: [keys.task(id), keys.result(id), keys.stream(id)], replyTo: replyTo, storeResult: storeResult,
            extended: extended, now: now)
    }

    /// Raises the recorded read position of generator `id` to `position` items (never lowers it) and publishes it,
    /// which wakes a producer held at its backpressure bound. Returns the position now recorded.
    ///
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func recordStreamRead(_ id: String, position: Int) async throws -> Int {
        let reply = try await run(
            StreamScripts.read, keys: [keys.streamRead(id)], arguments: [keys.prefix, position, resultTTLSeconds])
        return reply.int ?? position
    }

    /// The recorded read position of generator `id` (0 when none is recorded).
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func streamReadPosition(_ id: String) async throws -> Int {
        let reply = try await redis.send(RedisCommand("GET", keys.streamRead(id)), timeout: nil)
        return reply.string.flatMap { Int($0) } ?? 0
    }
}

extension ScriptReply {
    static let appended = Array("appended".utf8)
    static let gap = Array("gap".utf8)
}
