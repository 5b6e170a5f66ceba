import ConveyorAMQP

/// How Conveyor finds or creates a task queue; producers and workers use the same rules.
///
/// A queue that already exists is used as it is, whatever its type or arguments (a classic queue Celery declared,
/// say): the two systems then agree by construction. Only a missing queue is declared, durable, as a quorum queue
/// with a delivery limit (so a message that keeps killing workers is dropped or dead-lettered, not redelivered
/// forever).
public struct TaskQueueTopology: Sendable, Hashable {
    /// `x-delivery-limit` of the queues Conveyor declares: deliveries after which the broker gives up on a message.
    public var deliveryLimit: Int

    public init(deliveryLimit: Int = 5) {
        self.deliveryLimit = deliveryLimit
    }

    /// The declaration Conveyor uses for a queue it creates.
    public func queue(named name: String) -> AMQPQueue {
        var queue = AMQPQueue(name, durable: true)
        queue.queueType = .quorum
        queue.arguments["x-delivery-limit"] = .int(Int64(deliveryLimit))
        return queue
    }

    /// Makes sure queue `name` exists: uses it as it is if it does (a passive declare), declares it otherwise.
    ///
    /// - Throws: ``ConveyorError/queueMismatch(queue:serverText:)`` if the broker refuses the declaration (406:
    ///   someone declared the queue with other arguments in between; the text names both), or the
    ///   ``AMQPError`` of the calls.
    public func ensure(_ name: String, on connection: AMQPConnection) async throws {
        if try await connection.queueInfo(name) != nil { return }
        try await declare(name, on: connection)
    }

    /// Declares queue `name` with Conveyor's arguments (not passively).
    ///
    /// - Throws: ``ConveyorError/queueMismatch(queue:serverText:)`` when it exists with other arguments, or the
    ///   ``AMQPError`` of the call.
    public func declare(_ name: String, on connection: AMQPConnection) async throws {
        do {
            try await connection.declare(queue(named: name))
        } catch AMQPError.preconditionFailed(let text) {
            throw ConveyorError.queueMismatch(queue: name, serverText: text)
        }
    }
}
