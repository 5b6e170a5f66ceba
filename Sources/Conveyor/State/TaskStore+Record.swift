import ConveyorRedis

/// How a run ended, as the worker records it with ``TaskStore/finish(_:token:outcome:replyTo:storeResult:extended:now:)``.
public enum TaskOutcome: Sendable, Hashable {
    /// The task's return value, already encoded as JSON text (e.g. by `JSONEncoder`): spliced into the result meta
    /// as it is, never parsed again.
    case success(json: [UInt8])
    case failure(TaskFailure)
    /// Stopped because it was revoked while running.
    case revoked(reason: String)

    /// A success whose value is a ``JSONValue``.
    public static func success(_ value: JSONValue) -> TaskOutcome {
        var writer = JSONWriter(style: .compact)
        writer.value(value)
        return .success(json: writer.bytes)
    }

    var state: TaskState {
        switch self {
        case .success: .success
        case .failure: .failure
        case .revoked: .revoked
        }
    }
}

/// The answer of a write that needs the run's lease.
public enum RecordOutcome: Sendable, Hashable {
    case recorded
    /// The token is no longer the task's current lease (it expired and another worker claimed the task, or the
    /// outcome is already recorded): nothing was written. The caller should stop working on the task.
    case fenced
}

/// The answer of ``TaskStore/retry(_:token:error:dueMs:message:extended:now:)``.
public enum RetryOutcome: Sendable, Hashable {
    /// State RETRY, the message scheduled in the delay set; `retries` counts the retries recorded so far.
    case scheduled(retries: Int)
    case fenced
}

/// The answer of ``TaskStore/fail(_:error:reason:name:queue:replyTo:extended:now:)``.
public enum FailOutcome: Sendable, Hashable {
    case recorded
    /// The task already has an outcome, which is kept.
    case alreadyFinished(TaskState)
    /// A worker holds a live lease on it: its run is not overwritten.
    case leasedElsewhere(owner: String, untilMs: Int64)
}

extension TaskStore {
    /// Records how a run ended: the task record, the per-state index, Celery's result meta (SET with the result
    /// TTL and PUBLISH on `celery-task-meta-<id>`), and a notification of `id` on `P notify:<replyTo>`. One
    /// script, one round trip; nothing is written unless `token` is still the task's lease.
    ///
    /// - Parameters:
    ///   - replyTo: the Conveyor client id the message's `reply_to` named, if any; `nil` publishes no notification.
    ///   - storeResult: `false` (Celery's `ignore_result`) records the state but writes no result meta.
    ///   - extended: Celery's `result_extended` fields to add to the meta.
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func finish(
        _ id: String, token: Int64, outcome: TaskOutcome, replyTo: String? = nil, storeResult: Bool = true,
        extended: CeleryResultMeta.Extended? = nil, now: Int64? = nil
    ) async throws -> RecordOutcome {
        try await record(
            outcome, of: id, token: token, script: TaskScripts.finish, keys: [keys.task(id), keys.result(id)],
            replyTo: replyTo, storeResult: storeResult, extended: extended, now: now)
    }

    /// ``finish(_:token:outcome:replyTo:storeResult:extended:now:)`` with `script`, which takes the finish script's
    /// arguments (a generator's finish also writes its end marker).
    func record(
        _ outcome: TaskOutcome, of id: String, token: Int64, script: RedisScript, keys scriptKeys: [String],
        replyTo: String?, storeResult: Bool, extended: CeleryResultMeta.Extended?, now: Int64?
    ) async throws -> RecordOutcome {
        let state = outcome.state
        var meta: [UInt8] = []
        var errorType = ""
        var errorMessage = ""
        let dateDone = now ?? MillisecondClock.now()
        switch outcome {
        case .success(let json):
            if storeResult {
                meta = CeleryResultMeta.encode(
                    status: state.rawValue, taskID: id, traceback: nil, dateDone: .milliseconds(dateDone),
                    extended: extended, capacity: json.count
                ) { $0.raw(json) }
            }
        case .failure(let failure):
            errorType = failure.type
            errorMessage = failure.message
            if storeResult {
                meta = Self.exceptionMeta(
                    id, status: state, failure: failure, module: TaskFailure.celeryModule,
                    traceback: CeleryResultMeta.traceback(for: failure), dateDone: .milliseconds(dateDone),
                    extended: extended)
            }
        case .revoked(let reason):
            errorType = TaskFailure.revokedType
            errorMessage = reason
            if storeResult {
                meta = Self.exceptionMeta(
                    id, status: state, failure: TaskFailure(type: errorType, message: reason),
                    module: TaskFailure.celeryRevokedModule, traceback: nil, dateDone: .milliseconds(dateDone),
                    extended: extended)
            }
        }
        let reply = try await run(
            script, keys: scriptKeys,
            arguments: [
                keys.prefix, id, token, state.rawValue, meta, errorType, errorMessage, replyTo ?? "", now ?? 0,
                resultTTLSeconds,
            ])
        return try Self.recordOutcome(reply, script: "finish")
    }

    /// Records a failed run that will run again: state RETRY (retries + 1, the error kept), the lease released,
    /// `message` scheduled in the delay set for `dueMs`, and Celery's RETRY meta written and published. One
    /// script; nothing is written unless `token` is still the task's lease.
    ///
    /// - Parameter message: the message to publish when due (the envelope with `retries` + 1).
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func retry(
        _ id: String, token: Int64, error: TaskFailure, dueMs: Int64, message: DelayedMessage,
        extended: CeleryResultMeta.Extended? = nil, now: Int64? = nil
    ) async throws -> RetryOutcome {
        let meta = Self.exceptionMeta(
            id, status: .retry, failure: error, module: TaskFailure.celeryModule,
            traceback: CeleryResultMeta.traceback(for: error), dateDone: .none, extended: extended)
        let reply = try await run(
            TaskScripts.retry,
            keys: [keys.task(id), keys.result(id), keys.delayed, keys.delayedMessages, keys.delayedInFlight],
            arguments: [
                keys.prefix, id, token, dueMs, message.jsonBytes(), meta, error.type, error.message, now ?? 0,
                resultTTLSeconds,
            ])
        let script = "retry"
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.recorded: return .scheduled(retries: Int(try ScriptReply.int(fields, 1, script: script)))
        case ScriptReply.fenced: return .fenced
        default: throw ScriptReply.unexpected(fields, script: script)
        }
    }

    /// Records progress of a running task: state PROGRESS with the fraction and message in the task record, and
    /// Celery's PROGRESS meta (`{"current", "total", "fraction", "message"}`) written and published.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func progress(
        _ id: String, token: Int64, _ progress: TaskProgress, now: Int64? = nil
    ) async throws -> RecordOutcome {
        let meta = CeleryResultMeta.encode(
            status: TaskState.progress.rawValue, taskID: id, traceback: nil, dateDone: .none
        ) { writer in
            writer.raw("{")
            writer.key("current")
            if let current = progress.current { writer.double(current) } else { writer.raw("null") }
            writer.separator()
            writer.key("total")
            if let total = progress.total { writer.double(total) } else { writer.raw("null") }
            writer.separator()
            writer.key("fraction")
            writer.double(progress.fraction)
            writer.separator()
            writer.key("message")
            writer.optionalString(progress.message)
            writer.raw("}")
        }
        let reply = try await run(
            TaskScripts.progress, keys: [keys.task(id), keys.result(id)],
            arguments: [
                keys.prefix, id, token, progress.fraction, progress.message ?? "", meta, now ?? 0, resultTTLSeconds,
            ])
        return try Self.recordOutcome(reply, script: "progress")
    }

    /// Gives a claimed task back unfinished (the worker is shutting down and requeues its message): state
    /// RECEIVED, the lease dropped, the claim not counted towards the poison limit. Nothing is written unless
    /// `token` is still the task's lease.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func release(_ id: String, token: Int64, now: Int64? = nil) async throws -> RecordOutcome {
        let reply = try await run(
            TaskScripts.release, keys: [keys.task(id)], arguments: [keys.prefix, id, token, now ?? 0, resultTTLSeconds])
        return try Self.recordOutcome(reply, script: "release")
    }

    /// Records that a message cannot run at all (bad envelope, unknown task, payload too large) without a lease:
    /// state FAILURE with `reason`, Celery's FAILURE meta, the client notified. The worker calls it before it
    /// dead-letters the message. An outcome already recorded, or a live run elsewhere, is left alone.
    ///
    /// - Parameters:
    ///   - error: what Celery clients see (`exc_type`, `exc_message`).
    ///   - reason: a short machine-readable cause, recorded as `reason` (e.g. the dead-letter reason).
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func fail(
        _ id: String, error: TaskFailure, reason: String, name: String? = nil, queue: String? = nil,
        replyTo: String? = nil, extended: CeleryResultMeta.Extended? = nil, now: Int64? = nil
    ) async throws -> FailOutcome {
        let meta = Self.exceptionMeta(
            id, status: .failure, failure: error, module: TaskFailure.celeryModule,
            traceback: CeleryResultMeta.traceback(for: error), dateDone: .milliseconds(now ?? MillisecondClock.now()),
            extended: extended)
        let reply = try await run(
            TaskScripts.fail, keys: [keys.task(id), keys.result(id)],
            arguments: [
                keys.prefix, id, error.type, error.message, reason, meta, name ?? "", queue ?? "", replyTo ?? "",
                now ?? 0, resultTTLSeconds,
            ])
        let script = "fail"
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.recorded: return .recorded
        case ScriptReply.finished: return .alreadyFinished(try ScriptReply.state(fields, 1, script: script))
        case ScriptReply.leased:
            return .leasedElsewhere(
                owner: try ScriptReply.string(fields, 1, script: script),
                untilMs: try ScriptReply.int(fields, 2, script: script))
        default: throw ScriptReply.unexpected(fields, script: script)
        }
    }

    static func recordOutcome(_ reply: RESPValue, script: String) throws(TaskStoreError) -> RecordOutcome {
        let (tag, fields) = try ScriptReply.tagged(reply, script: script)
        switch tag {
        case ScriptReply.recorded: return .recorded
        case ScriptReply.fenced: return .fenced
        default: throw ScriptReply.unexpected(fields, script: script)
        }
    }

    static func exceptionMeta(
        _ id: String, status: TaskState, failure: TaskFailure, module: String, traceback: String?,
        dateDone: CeleryResultMeta.DateDone, extended: CeleryResultMeta.Extended?
    ) -> [UInt8] {
        CeleryResultMeta.encode(
            status: status.rawValue, taskID: id, traceback: traceback, dateDone: dateDone, extended: extended,
            capacity: failure.message.utf8.count + 64
        ) { writer in
            writer.raw("{")
            writer.key("exc_type")
            writer.string(failure.type)
            writer.separator()
            writer.key("exc_message")
            writer.raw("[")
            writer.string(failure.message)
            writer.raw("]")
            writer.separator()
            writer.key("exc_module")
            writer.string(module)
            writer.raw("}")
        }
    }
}
