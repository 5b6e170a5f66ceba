import ConveyorRedis

/// A task waiting in the delay set, as `conveyor inspect scheduled` lists it.
public struct ScheduledTask: Sendable, Hashable {
    public var id: String
    /// The task name (the message's `task` header); `nil` when its message is unreadable or being published.
    public var name: String?
    /// The queue it will be published to (the message's routing key).
    public var queue: String?
    /// When it is due, Unix ms.
    public var dueMs: Int64
}

extension TaskStore {
    /// The first `limit` tasks of the delay set, soonest first, and how many it holds in all.
    ///
    /// Two reads, not one script: a listing for people, which may be a moment out of date.
    ///
    /// - Throws: the ``RedisError`` of the calls, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func scheduled(limit: Int = 100) async throws -> (tasks: [ScheduledTask], total: Int) {
        let total = try await redis.send(RedisCommand("ZCARD", keys.delayed), timeout: nil).int ?? 0
        let reply = try await redis.send(
            RedisCommand("ZRANGE", keys.delayed, 0, max(0, limit - 1), "WITHSCORES"), timeout: nil)
        guard case .array(let flat) = reply, flat.count % 2 == 0 else {
            throw TaskStoreError.unexpectedReply(script: "ZRANGE delayed", reply: reply.description)
        }
        var tasks: [ScheduledTask] = []
        var index = 0
        while index + 1 < flat.count {
            defer { index += 2 }
            guard let id = flat[index].string, let due = flat[index + 1].double else { continue }
            tasks.append(ScheduledTask(id: id, name: nil, queue: nil, dueMs: Int64(due)))
        }
        guard !tasks.isEmpty else { return ([], total) }
        var arguments: [any RedisArgument] = [keys.delayedMessages]
        for task in tasks { arguments.append(task.id) }
        let messages = try await redis.send(RedisCommand("HMGET", arguments: arguments), timeout: nil)
        if case .array(let items) = messages {
            for (offset, item) in items.enumerated() where offset < tasks.count {
                guard let bytes = item.bytes, let message = try? DelayedMessage(json: bytes) else { continue }
                tasks[offset].name = message.headers["task"]?.stringValue
                tasks[offset].queue = message.routingKey
            }
        }
        return (tasks, total)
    }
}
