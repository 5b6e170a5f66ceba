/// What ``ConveyorClient`` and ``ObjectRef`` throw, besides the broker's and Redis's own errors.
public enum ConveyorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The broker refused to declare `queue` because it exists with other arguments; `serverText` is the broker's
    /// reply, which names the argument and both values.
    case queueMismatch(queue: String, serverText: String)
    /// The task did not finish within the time waited for it (it may still run later).
    case timeout(id: String, after: Duration)
    /// The task was revoked (cancelled or expired) and will not run.
    case revoked(id: String, reason: String)
    /// The task succeeded but its result is not the expected `Output` type.
    case resultDecoding(id: String, reason: String)
    /// A URL in the configuration does not parse.
    case invalidConfiguration(String)
    /// The client was closed.
    case closed
    /// The submit was refused: `queue` already holds `depth` ready messages, at or over ``TaskOptions/maxQueued``
    /// (`bound`). Nothing was submitted: no message, no task record, no idempotency key.
    case queueFull(queue: String, bound: Int, depth: Int)
    /// The submit was refused: its message body is `size` bytes, over ``ConveyorConfiguration/maxPayloadBytes``
    /// (`limit`). Nothing was submitted. Large inputs belong in storage the task reads, with their address passed.
    case payloadTooLarge(size: Int, limit: Int)

    public var description: String {
        switch self {
        case .queueMismatch(let queue, let text):
            "queue '\(queue)' exists with other arguments than Conveyor declares: \(text)"
        case .timeout(let id, let after): "task \(id) did not finish within \(after)"
        case .revoked(let id, let reason): "task \(id) was revoked: \(reason)"
        case .resultDecoding(let id, let reason): "the result of task \(id) cannot be decoded: \(reason)"
        case .invalidConfiguration(let text): "invalid configuration: \(text)"
        case .closed: "the client was closed"
        case .queueFull(let queue, let bound, let depth):
            "queue '\(queue)' is full: \(depth) messages waiting, bound (maxQueued) \(bound); the task was not submitted"
        case .payloadTooLarge(let size, let limit):
            "the task's message is \(size) bytes, over the limit of \(limit) (maxPayloadBytes); the task was not submitted"
        }
    }
}

/// A task ended in FAILURE: its error's type and message, as the worker recorded them (Celery's
/// `exc_type`/`exc_message`).
public struct TaskError: Error, Sendable, Hashable, CustomStringConvertible {
    public var id: String
    /// The error's type name (`ImageError`, or a Python exception class).
    public var type: String
    public var message: String

    public init(id: String, type: String, message: String) {
        self.id = id
        self.type = type
        self.message = message
    }

    public var description: String { "task \(id) failed: \(type): \(message)" }
}
