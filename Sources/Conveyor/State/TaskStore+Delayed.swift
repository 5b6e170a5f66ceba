import ConveyorRedis

/// A delayed message handed out by ``TaskStore/promoteDue(limit:lease:now:)`` for publishing.
public struct PromotedMessage: Sendable, Hashable {
    public var id: String
    public var message: DelayedMessage
}

/// What one ``TaskStore/promoteDueBatch(limit:lease:now:)`` handed out.
public struct PromotionBatch: Sendable, Hashable {
    /// The messages to publish, then acknowledge with ``TaskStore/ackPromoted(_:)``.
    public var messages: [PromotedMessage]
    /// How long until the earliest message left in the delay set (or a lease among those being published) is
    /// due, as of the call; `nil` when nothing is left.
    public var nextDue: Duration?
}

extension TaskStore {
    /// Schedules `message` to be published at `dueMs` (an `eta`, a `countdown`). One message per id: scheduling
    /// the id again replaces it.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func schedule(_ id: String, dueMs: Int64, message: DelayedMessage) async throws {
        _ = try await run(
            TaskScripts.schedule, keys: [keys.delayed, keys.delayedMessages, keys.delayedInFlight],
            arguments: [keys.prefix, id, dueMs, message.jsonBytes()])
    }

    /// Hands out up to `limit` messages to publish: the due ones, and those a promoter took earlier but never
    /// acknowledged within `lease` (it died). Each stays stored, leased to the caller for `lease`, until
    /// ``ackPromoted(_:)``; so a promoter that dies between the two loses nothing, and at worst a message is
    /// published twice (the worker's claim makes that harmless).
    ///
    /// A stored message that does not parse is skipped and acknowledged (it can never be published); the others
    /// are returned.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func promoteDue(
        limit: Int = 100, lease: Duration = .seconds(30), now: Int64? = nil
    ) async throws
        -> [PromotedMessage]
    {
        try await promoteDueBatch(limit: limit, lease: lease, now: now).messages
    }

    /// ``promoteDue(limit:lease:now:)``, and when the next message is due: the promoter sleeps until then (or its
    /// interval, whichever is shorter) instead of a whole interval, so a countdown is published within a few
    /// milliseconds of its due time rather than half an interval late on average.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func promoteDueBatch(
        limit: Int = 100, lease: Duration = .seconds(30), now: Int64? = nil
    ) async throws -> PromotionBatch {
        let reply = try await run(
            TaskScripts.promoteDue, keys: [keys.delayed, keys.delayedMessages, keys.delayedInFlight],
            arguments: [keys.prefix, now ?? 0, lease.wholeMilliseconds, max(1, limit)])
        guard case .array(let flat) = reply, flat.count % 2 == 1, let next = flat[0].int else {
            throw TaskStoreError.unexpectedReply(script: "promoteDue", reply: reply.description)
        }
        var promoted: [PromotedMessage] = []
        promoted.reserveCapacity(flat.count / 2)
        var unreadable: [String] = []
        var index = 1
        while index < flat.count {
            defer { index += 2 }
            guard let id = flat[index].string, let bytes = flat[index + 1].bytes else {
                throw TaskStoreError.unexpectedReply(script: "promoteDue", reply: reply.description)
            }
            do {
                promoted.append(PromotedMessage(id: id, message: try DelayedMessage(json: bytes)))
            } catch {
                unreadable.append(id)
            }
        }
        if !unreadable.isEmpty { try await ackPromoted(unreadable) }
        return PromotionBatch(messages: promoted, nextDue: next < 0 ? nil : .milliseconds(next))
    }

    /// Drops promotions whose publish the broker confirmed. An id scheduled again meanwhile (a retry that came
    /// back before this ack) keeps its new message.
    ///
    /// - Returns: how many of `ids` were still in flight.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func ackPromoted(_ ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        var arguments: [any RedisArgument] = [keys.prefix]
        arguments.reserveCapacity(ids.count + 1)
        for id in ids { arguments.append(id) }
        let reply = try await run(
            TaskScripts.ackPromoted, keys: [keys.delayed, keys.delayedMessages, keys.delayedInFlight],
            arguments: arguments)
        return reply.int ?? 0
    }

    /// When `id` is due (Unix ms), or `nil` when it is not waiting in the delay set.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func scheduledTime(_ id: String) async throws -> Int64? {
        try await redis.send(RedisCommand("ZSCORE", keys.delayed, id), timeout: nil).double.map { Int64($0) }
    }
}
