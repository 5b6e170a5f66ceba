import ConveyorAMQP
import Foundation

/// The RabbitMQ queue type Conveyor declares its task queues with (`CONVEYOR_QUEUE_TYPE`).
public enum TaskQueueType: String, Sendable, Hashable, CaseIterable {
    /// Replicated over a majority of the cluster's nodes (Raft), with the broker's own delivery limit: the
    /// default, and the choice for a cluster. A message reaches a consumer only once its log entry is written and
    /// synced, about 0.7 ms on the project's benchmark machine, which dominates a short task's round trip.
    case quorum
    /// One node, no replication, no broker-side delivery limit (the worker's own `maxDeliveries` still dead-letters
    /// a message that keeps failing its claims). A persistent message is still confirmed only once it is on disk
    /// or consumed, so nothing confirmed is lost when the broker restarts; it reaches a consumer in about 0.2 ms.
    /// For a single broker node where round-trip latency matters, and what Celery declares by default.
    case classic
}

/// How Conveyor finds or creates a task queue; producers and workers use the same rules.
///
/// A queue that already exists is used as it is, whatever its type or arguments (a classic queue Celery declared,
/// say): the two systems then agree by construction. Only a missing queue is declared, durable, as a quorum queue
/// (or the ``queueType`` chosen) with a delivery limit and a dead-letter queue, `<queue>.dlq`, so a message that
/// keeps killing workers ends there instead of being redelivered forever. Workers put the messages they cannot
/// run in the same dead-letter queue, with the reason in their headers.
public struct TaskQueueTopology: Sendable, Hashable {
    /// `x-delivery-limit` of the queues Conveyor declares: deliveries after which the broker itself dead-letters a
    /// message. It is a backstop above the worker's own limit (``ConveyorWorker``'s `maxDeliveries`, 5), which
    /// acts first and records why.
    public var deliveryLimit: Int
    /// Queues to declare as priority queues, with their highest priority (1–9; `x-max-priority`). Quorum queues
    /// have no priorities, so such a queue is a classic queue instead: durable, with the same dead-letter
    /// queue, but no `x-delivery-limit` (the worker's own `maxDeliveries` still applies). Producers and workers
    /// that may declare the queue must agree on this, as on every declaration.
    public var priorityQueues: [String: UInt8]
    /// The type of the task and dead-letter queues Conveyor declares (a priority queue is always classic).
    /// Producers and workers that may declare a queue must agree on it, as on every declaration.
    public var queueType: TaskQueueType

    public init(deliveryLimit: Int = 10, priorityQueues: [String: UInt8] = [:], queueType: TaskQueueType = .quorum) {
        self.deliveryLimit = deliveryLimit
        self.priorityQueues = priorityQueues
        self.queueType = queueType
    }

    /// Priority queues from text such as `urgent,images:5`: comma-separated names, each with an optional
    /// `:max` (1–9, default 9). Entries that do not parse are skipped.
    public static func parsePriorityQueues(_ text: String) -> [String: UInt8] {
        var queues: [String: UInt8] = [:]
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard let name = parts.first, !name.isEmpty else { continue }
            if parts.count == 2 {
                guard let max = UInt8(parts[1]), (1...9).contains(max) else { continue }
                queues[name] = max
            } else {
                queues[name] = 9
            }
        }
        return queues
    }

    /// The dead-letter queue of `queue`: `<queue>.dlq`.
    public func deadLetterQueue(for queue: String) -> String { queue + ".dlq" }

    /// The declaration Conveyor uses for a queue it creates: quorum, a delivery limit, dead letters routed
    /// through the default exchange to ``deadLetterQueue(for:)``. A name in ``priorityQueues`` is declared
    /// classic with `x-max-priority` (and no delivery limit) instead, and with ``queueType`` `.classic` every
    /// queue is classic (without a delivery limit, which classic queues do not have).
    public func queue(named name: String) -> AMQPQueue {
        var queue = AMQPQueue(name, durable: true)
        if let maxPriority = priorityQueues[name] {
            queue.queueType = .classic
            queue.maxPriority = Int(min(max(maxPriority, 1), 9))
        } else if queueType == .classic {
            queue.queueType = .classic
        } else {
            queue.queueType = .quorum
            queue.arguments["x-delivery-limit"] = .int(Int64(deliveryLimit))
        }
        queue.arguments["x-dead-letter-exchange"] = .string("")
        queue.arguments["x-dead-letter-routing-key"] = .string(deadLetterQueue(for: name))
        return queue
    }

    /// The declaration of a dead-letter queue: durable, of ``queueType``, no limit of its own.
    public func deadLetterQueue(named name: String) -> AMQPQueue {
        var queue = AMQPQueue(name, durable: true)
        queue.queueType = queueType == .classic ? .classic : .quorum
        return queue
    }

    /// Makes sure `name`'s dead-letter queue exists (declaring it if missing).
    ///
    /// - Throws: ``ConveyorError/queueMismatch(queue:serverText:)``, or the ``AMQPError`` of the calls.
    public func ensureDeadLetterQueue(for name: String, on connection: AMQPConnection) async throws {
        let dead = deadLetterQueue(for: name)
        if try await connection.queueInfo(dead) != nil { return }
        do {
            try await connection.declare(deadLetterQueue(named: dead))
        } catch AMQPError.preconditionFailed(let text) {
            throw ConveyorError.queueMismatch(queue: dead, serverText: text)
        }
    }

    /// Makes sure queue `name` exists: uses it as it is if it does (a passive declare), declares it otherwise
    /// (with its dead-letter queue first, so nothing dead-lettered is dropped).
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
        try await ensureDeadLetterQueue(for: name, on: connection)
        do {
            try await connection.declare(queue(named: name))
        } catch AMQPError.preconditionFailed(let text) {
            throw ConveyorError.queueMismatch(queue: name, serverText: text)
        }
    }
}
