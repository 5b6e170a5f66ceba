import Conveyor
import ConveyorRedis
import Logging

/// What a running task knows about itself, and how it talks back: progress, retries.
///
/// Cancellation reaches the task as Swift task cancellation (`Task.isCancelled`, `CancellationError` from
/// `Task.sleep`): its soft time limit passed, it was revoked, its lease was lost, or the worker shuts down.
public struct TaskContext: Sendable {
    /// The task id.
    public let id: String
    /// The registered task name.
    public let name: String
    /// The queue the message came from.
    public let queue: String
    /// How many times the task was retried before this run (0 on the first run).
    public let retries: Int
    /// How many times the task was claimed, this run included (more than `retries + 1` after worker crashes).
    public let attempt: Int
    /// The whole message, for tasks that want its headers.
    public let envelope: TaskEnvelope
    /// A logger with the task's id and name as metadata.
    public var logger: Logger {
        // Made on demand: setting metadata re-renders it in some handlers, too costly to do for every task.
        var logger = workerLogger
        logger[metadataKey: "task.id"] = .string(id)
        logger[metadataKey: "task.name"] = .string(name)
        return logger
    }
    /// The worker's pipelined Redis connection, for tasks that keep state of their own in Redis.
    public let redis: RedisClient

    let workerLogger: Logger
    let store: TaskStore
    let token: Int64

    /// Reports progress: the task's state becomes PROGRESS with `fraction` (0…1) and `message`, visible in
    /// ``ConveyorClient/status(_:)`` and as Celery's PROGRESS meta.
    ///
    /// - Throws: `CancellationError` when the task no longer holds its lease (another worker took it over, or it
    ///   already has an outcome); the ``RedisError`` of the call.
    public func progress(
        _ fraction: Double, message: String? = nil, current: Double? = nil, total: Double? = nil
    )
        async throws
    {
        var progress = TaskProgress(fraction: min(1, max(0, fraction)), message: message)
        progress.current = current
        progress.total = total
        if try await store.progress(id, token: token, progress) == .fenced { throw CancellationError() }
    }

    /// An error to throw to run the task again later (Celery's `self.retry()`): `throw context.retry()`.
    ///
    /// - Parameter after: the delay; the task's ``RetryPolicy`` backoff when `nil`.
    public func retry(after: Duration? = nil, reason: String = "retry requested") -> TaskRetry {
        TaskRetry(after: after, reason: reason)
    }
}
