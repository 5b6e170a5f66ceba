import ConveyorRedis

/// What a worker learns when it claims a task before running it (DESIGN §5.3).
public enum ClaimOutcome: Sendable, Hashable {
    /// Run it: the lease is this worker's, `token` fences its writes, `attempt` counts claims (1 for the first run).
    case run(token: Int64, attempt: Int)
    /// The task already has an outcome (a redelivery): ack the message and skip it.
    case alreadyFinished(TaskState)
    /// A revocation tombstone exists: the task is now REVOKED (Celery meta written); ack and skip.
    case revoked(reason: String)
    /// Its `expires` time has passed: the task is now REVOKED with reason `expired`; ack and skip.
    case expired
    /// Someone holds a live lease until `untilMs`: usually another worker (a duplicate delivery), or this same
    /// worker id if the message came back while it still runs the task. The caller decides (typically: leave it,
    /// ack or requeue later).
    case leasedElsewhere(owner: String, untilMs: Int64)
    /// Claimed more than `maxAttempts` times without an outcome: the task is now FAILURE (`PoisonMessage`);
    /// dead-letter the message.
    case poison(attempts: Int)
    /// The task's rate limit gives it a slot at `untilMs`, kept for it: park the message until then
    /// (``TaskStore/park(_:dueMs:message:cap:)``) and ack it; its next claim from then on runs without counting again.
    case throttled(untilMs: Int64)
    /// Its pool's concurrency cap is reached: park the message as a waiter of the pool; a slot's release wakes it,
    /// and at the latest it comes back at `firstExpiryMs`, when the oldest slot lapses unless renewed.
    case capped(firstExpiryMs: Int64)
}

extension TaskStore {
    /// Claims task `id` for `worker`: decides whether it may run and, if so, takes a lease with a fencing token
    /// (state STARTED). One script, one round trip.
    ///
    /// - Parameters:
    ///   - name: the task name, recorded.
    ///   - queue: the queue it came from, recorded.
    ///   - lease: how long the lease lasts unless renewed (``renewLeases(worker:ids:lease:now:)``, heartbeats).
    ///   - expiresMs: the envelope's `expires` (Unix ms); past it the task is REVOKED as expired instead.
    ///   - maxAttempts: how many claims without an outcome make the message poison; `0` means no limit. Claims
    ///     that ended in a RETRY do not count.
    ///   - replyTo: the Conveyor client to notify when the claim itself decides the outcome.
    ///   - limits: the task's rate limit and concurrency cap, checked in the same script after every other check
    ///     (so a finished, leased or revoked task is never counted); `nil` for none, which costs nothing.
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func claim(
        _ id: String, worker: String, name: String, queue: String, lease: Duration, expiresMs: Int64? = nil,
        maxAttempts: Int = 0, replyTo: String? = nil, limits: ClaimLimits? = nil, now: Int64? = nil
    ) async throws -> ClaimOutcome {
        var keyList: [any RedisArgument] = [keys.task(id), keys.result(id), keys.fence, keys.revoked(id)]
        var arguments: [any RedisArgument] = [
            keys.prefix, id, worker, now ?? 0, lease.wholeMilliseconds, name, queue, expiresMs ?? 0, maxAttempts,
            resultTTLSeconds, replyTo ?? "",
        ]
        if let limits, limits.isLimiting { limits.append(to: &keyList, &arguments, keys: keys, name: name) }
        let reply = try await run(TaskScripts.claim, keys: keyList, arguments: arguments)
        return try Self.claimOutcome(reply)
    }

    static func claimOutcome(_ reply: RESPValue) throws(TaskStoreError) -> ClaimOutcome {
        let script = "claim"
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.run:
            return .run(
                token: try ScriptReply.int(fields, 1, script: script),
                attempt: Int(try ScriptReply.int(fields, 2, script: script)))
        case ScriptReply.finished:
            return .alreadyFinished(try ScriptReply.state(fields, 1, script: script))
        case ScriptReply.revoked:
            return .revoked(reason: try ScriptReply.string(fields, 1, script: script))
        case ScriptReply.expired:
            return .expired
        case ScriptReply.leased:
            return .leasedElsewhere(
                owner: try ScriptReply.string(fields, 1, script: script),
                untilMs: try ScriptReply.int(fields, 2, script: script))
        case ScriptReply.poison:
            return .poison(attempts: Int(try ScriptReply.int(fields, 1, script: script)))
        case ScriptReply.throttled:
            return .throttled(untilMs: try ScriptReply.int(fields, 1, script: script))
        case ScriptReply.capped:
            return .capped(firstExpiryMs: try ScriptReply.int(fields, 1, script: script))
        default:
            throw ScriptReply.unexpected(fields, script: script)
        }
    }
}
