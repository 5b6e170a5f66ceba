import ConveyorAMQP
import Foundation

/// Admission control on the producer side: idempotency keys, queue bounds and delays (docs/PROTOCOL.md,
/// "Admission").
extension ConveyorClient {
    /// Submits one task under the admission rules of `options` and returns its id, and whether this client
    /// published it (so the workers announce its finish on this client's notification channel).
    ///
    /// The order is what keeps a refused submit from leaving anything behind: the idempotency key is reserved
    /// first (a key that already names a task returns it, whatever the queue's depth), then the bound is checked,
    /// then the task is published or scheduled, then the key is confirmed. A refusal before the publish releases
    /// the reservation.
    func admit(
        name: String, args: [JSONValue], kwargs: [String: JSONValue], options: TaskOptions
    ) async throws -> (id: String, submittedHere: Bool) {
        var options = options
        options.fixETA(now: Date())
        let queue = queueName(options)
        try await ensureQueue(queue)
        guard let key = options.idempotencyKey, !key.isEmpty else {
            try await checkBound(queue, options: options, adding: 1)
            let (id, outgoing) = try outgoing(name: name, args: args, kwargs: kwargs, options: options, queue: queue)
            try await deliver(outgoing, options: options)
            logger.trace("submitted", metadata: ["task": .string(name), "id": .string(id), "queue": .string(queue)])
            return (id, true)
        }
        let candidate = TaskID.make()
        var pause = Duration.milliseconds(5)
        while true {
            let reservation = try await store.reserveIdempotencyKey(
                key, candidate: candidate, pending: configuration.idempotencyPendingTTL,
                ttl: configuration.idempotencyTTL)
            switch reservation {
            case .confirmed(let id):
                return (id, false)
            case .pending:
                // Another producer is publishing it: it confirms within a publish, or its reservation lapses and
                // a later round here takes it over.
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(50))
            case .reserved(let id):
                let outgoing: AMQPOutgoing
                do {
                    try await checkBound(queue, options: options, adding: 1)
                    outgoing = try self.outgoing(
                        name: name, args: args, kwargs: kwargs, options: options, queue: queue, id: id
                    ).message
                } catch {
                    _ = try? await store.releaseIdempotencyKey(key, id: id)
                    throw error
                }
                do {
                    try await deliver(outgoing, options: options)
                } catch AMQPError.returned(let code, let text) {
                    // Unroutable: the broker dropped it, so nothing was published.
                    _ = try? await store.releaseIdempotencyKey(key, id: id)
                    throw AMQPError.returned(replyCode: code, replyText: text)
                }
                // Any other failure may have published the message: the reservation stays pending, and the next
                // submit with this key takes it over after the pending time and publishes the same id again (the
                // worker's claim runs it once).
                try await store.confirmIdempotencyKey(key, id: id, ttl: configuration.idempotencyTTL)
                logger.trace(
                    "submitted", metadata: ["task": .string(name), "id": .string(id), "queue": .string(queue)])
                // A reservation taken over from a producer that did not confirm: that producer may have published
                // the id too, with its own reply-to, so waits follow the task's result channel instead.
                return (id, id == candidate)
            }
        }
    }

    /// Throws ``ConveyorError/queueFull(queue:bound:depth:)`` when `queue` holds so many ready messages that
    /// `count` more would exceed ``TaskOptions/maxQueued``.
    ///
    /// The depth is a passive declare's message count: messages workers hold unacknowledged and tasks in the
    /// delay set do not count.
    func checkBound(_ queue: String, options: TaskOptions, adding count: Int) async throws {
        guard let bound = options.maxQueued else { return }
        let depth = try await broker.queueInfo(queue)?.messageCount ?? 0
        if depth + count > bound {
            throw ConveyorError.queueFull(queue: queue, bound: bound, depth: depth)
        }
    }

    /// Publishes a task message, or puts it in the delay set when it is not due yet.
    func deliver(_ outgoing: AMQPOutgoing, options: TaskOptions) async throws {
        if let dueMs = options.delayedDueMs() {
            try await schedule([outgoing], dueMs: dueMs)
        } else {
            try await publish(outgoing)
        }
    }

    /// Puts messages in the delay set (`schedule`, one script each), to be published by a worker's promoter at
    /// `dueMs`.
    func schedule(_ messages: [AMQPOutgoing], dueMs: Int64) async throws {
        let store = self.store
        try await withThrowingTaskGroup(of: Void.self) { group in
            for outgoing in messages {
                let properties = outgoing.message.properties
                let message = DelayedMessage(
                    exchange: outgoing.exchange, routingKey: outgoing.routingKey,
                    properties: .init(
                        contentType: properties.contentType, contentEncoding: properties.contentEncoding,
                        correlationID: properties.correlationId, replyTo: properties.replyTo,
                        priority: properties.priority),
                    headers: properties.headers.jsonFields, body: outgoing.message.body)
                let id = properties.correlationId ?? TaskID.make()
                group.addTask { try await store.schedule(id, dueMs: dueMs, message: message) }
            }
            try await group.waitForAll()
        }
    }
}

extension TaskOptions {
    /// A task is parked in the delay set only when due later than this (ms); a nearer one is published at once,
    /// as a worker runs a message whose `eta` is this close.
    static let delayThresholdMs: Int64 = 20

    /// Turns a ``countdown`` into an ``eta`` once, so the message's `eta` header and the delay set's due time
    /// agree.
    mutating func fixETA(now: Date) {
        if eta == nil, let countdown { eta = now.addingTimeInterval(countdown) }
    }

    /// The due time (Unix ms) when the task must wait in the delay set, else `nil`.
    func delayedDueMs() -> Int64? {
        guard let eta else { return nil }
        let dueMs = MillisecondClock.milliseconds(eta)
        return dueMs > MillisecondClock.now() + Self.delayThresholdMs ? dueMs : nil
    }
}
