import ConveyorRedis

/// One entry of ``TaskStore/list(state:limit:)``.
public struct TaskListEntry: Sendable, Hashable {
    public var id: String
    /// When the task entered the state (Unix ms).
    public var enteredMs: Int64
}

extension TaskStore {
    /// The task's status. A task Redis does not know is ``TaskState/pending`` (as in Celery); one only Celery wrote
    /// (a Python worker ran it) is read from its result meta. One round trip.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError`` when the stored values are not what
    ///   Conveyor or Celery write.
    public func status(_ id: String) async throws -> TaskStatus {
        let reply = try await run(TaskScripts.status, keys: [keys.task(id), keys.result(id)], arguments: [])
        guard case .array(let parts) = reply, let kind = parts.first?.int else {
            throw TaskStoreError.unexpectedReply(script: "status", reply: reply.description)
        }
        switch kind {
        case 1:
            guard parts.count == 2, case .array(let fields) = parts[1] else { break }
            return TaskStatus(id: id, hashReply: fields)
        case 2:
            guard parts.count == 2, let json = parts[1].bytes else { break }
            return TaskStatus(id: id, meta: try CeleryResultMeta(json: json))
        case 0:
            return TaskStatus(id: id)
        default:
            break
        }
        throw TaskStoreError.unexpectedReply(script: "status", reply: reply.description)
    }

    /// Celery's result meta of `id`, or `nil` while there is none (the task is pending or running, or its result
    /// expired).
    ///
    /// - Throws: the ``RedisError`` of the call, ``TaskStoreError/invalidResultMeta(_:)``.
    public func resultMeta(_ id: String) async throws -> CeleryResultMeta? {
        try await resultMetaJSON(id).map { json throws(TaskStoreError) in try CeleryResultMeta(json: json) }
    }

    /// The raw JSON text of `id`'s result meta, for callers that decode it themselves.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func resultMetaJSON(_ id: String) async throws -> [UInt8]? {
        try await redis.send(RedisCommand("GET", keys.result(id)), timeout: nil).bytes
    }

    /// The ids in `state`, newest first (by when they entered it), at most `limit`. Only states Conveyor records
    /// have entries (not PENDING); entries older than the result TTL are trimmed.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func list(state: TaskState, limit: Int = 100) async throws -> [TaskListEntry] {
        guard limit > 0 else { return [] }
        let reply = try await redis.send(
            RedisCommand("ZREVRANGE", keys.state(state), 0, limit - 1, "WITHSCORES"), timeout: nil)
        guard case .array(let flat) = reply else {
            throw TaskStoreError.unexpectedReply(script: "ZREVRANGE", reply: reply.description)
        }
        var entries: [TaskListEntry] = []
        entries.reserveCapacity(flat.count / 2)
        var index = 0
        while index + 1 < flat.count {
            if let id = flat[index].string, let score = flat[index + 1].double {
                entries.append(TaskListEntry(id: id, enteredMs: Int64(score)))
            }
            index += 2
        }
        return entries
    }

    /// How many ids `state`'s index holds.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func count(state: TaskState) async throws -> Int {
        try await redis.send(RedisCommand("ZCARD", keys.state(state)), timeout: nil).int ?? 0
    }
}
