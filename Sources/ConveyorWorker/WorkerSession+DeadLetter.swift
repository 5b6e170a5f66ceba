import Conveyor
import ConveyorAMQP
import Logging

/// Why a message went to the dead-letter queue: the code in `conveyor_dead_letter_reason`, and the `exc_type` the
/// task's FAILURE records (docs/PROTOCOL.md §1).
enum DeadLetterReason: String, Sendable {
    case payloadTooLarge = "payload-too-large"
    case malformed
    case unknownTask = "unknown-task"
    case invalidInput = "invalid-input"
    case deliveryLimit = "delivery-limit"

    var errorType: String {
        switch self {
        case .payloadTooLarge: "PayloadTooLarge"
        case .malformed: "MalformedMessage"
        case .unknownTask: "NotRegistered"
        case .invalidInput: "TaskInputError"
        case .deliveryLimit: TaskFailure.poisonType
        }
    }
}

extension WorkerSession {
    /// Records FAILURE with the reason (when the task id is known), copies the message to the queue's dead-letter
    /// queue with the reason in its headers, and acks the original only once the copy is confirmed.
    func deadLetter(
        _ delivery: AMQPDelivery, queue: String, reason: DeadLetterReason, detail: String, id: String?, name: String?,
        replyTo: String?
    ) async {
        logger.warning(
            "dead-lettering a message",
            metadata: [
                "reason": .string(reason.rawValue), "detail": .string(detail), "task.id": .string(id ?? "?"),
                "queue": .string(queue),
            ])
        metrics.deadLettered(reason: reason.rawValue)
        metrics.failed(name ?? "?", reason: reason.rawValue)
        do {
            if let id, !id.isEmpty {
                _ = try await persistently("fail") {
                    try await store.fail(
                        id, error: TaskFailure(type: reason.errorType, message: detail), reason: reason.rawValue,
                        name: name, queue: queue, replyTo: replyTo)
                }
            }
            var properties = delivery.properties
            properties.deliveryMode = .persistent
            properties.headers[ConveyorHeader.deadLetterReason.headerName] = .string(reason.rawValue)
            properties.headers[ConveyorHeader.deadLetterDetail.headerName] = .string(detail)
            properties.headers[ConveyorHeader.deadLetterQueue.headerName] = .string(queue)
            properties.headers[ConveyorHeader.deadLetterWorker.headerName] = .string(configuration.workerID)
            try await broker.publish(
                AMQPMessage(body: delivery.body, properties: properties), exchange: "",
                routingKey: topology.deadLetterQueue(for: queue), mandatory: true)
            _ = delivery.ack()
        } catch {
            // Nothing is dropped: the message goes back to its queue and is dead-lettered on its next delivery.
            logger.error("could not dead-letter the message; requeueing it", metadata: ["error": "\(error)"])
            _ = delivery.nack(requeue: true)
        }
    }
}
