import ConveyorRedis

/// The answer of ``TaskStore/revoke(_:reason:replyTo:now:)``.
public enum RevokeOutcome: Sendable, Hashable {
    /// The task had not started (or its run's lease had run out): it is REVOKED now and will not run.
    case revoked
    /// It already had an outcome, which is kept; the tombstone is set anyway.
    case alreadyFinished(TaskState)
    /// `worker` runs it right now: it is told on its revoke channel and stops it (the tombstone in its next
    /// heartbeat is the fallback).
    case running(worker: String)
}

extension TaskStore {
    /// Revokes task `id`: writes a tombstone `P revoked:<id>` (value `reason`, living ``Configuration/revocationTTL``)
    /// that every claim and heartbeat checks, and, when the task has not started, marks it REVOKED right away
    /// (Celery meta `TaskRevokedError(reason)`) and removes it from the delay set.
    ///
    /// - Parameter replyTo: a Conveyor client to notify when the task becomes REVOKED here.
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func revoke(
        _ id: String, reason: String = "revoked", replyTo: String? = nil, now: Int64? = nil
    ) async throws -> RevokeOutcome {
        let reply = try await run(
            TaskScripts.revoke,
            keys: [
                keys.task(id), keys.result(id), keys.revoked(id), keys.delayed, keys.delayedMessages,
                keys.delayedInFlight,
            ],
            arguments: [keys.prefix, id, reason, revocationTTLSeconds, now ?? 0, resultTTLSeconds, replyTo ?? ""])
        let script = "revoke"
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.revoked: return .revoked
        case ScriptReply.finished: return .alreadyFinished(try ScriptReply.state(fields, 1, script: script))
        case ScriptReply.running: return .running(worker: try ScriptReply.string(fields, 1, script: script))
        default: throw ScriptReply.unexpected(fields, script: script)
        }
    }

    /// The reason `id` was revoked, while its tombstone lives; `nil` when it was not.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func revocationReason(_ id: String) async throws -> String? {
        try await redis.send(RedisCommand("GET", keys.revoked(id)), timeout: nil).string
    }
}
