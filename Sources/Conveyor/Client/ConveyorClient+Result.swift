import Foundation

/// A task's result as a client asking by id sees it: ready with its outcome, or not yet.
public enum TaskResult: Sendable, Hashable {
    /// SUCCESS, with the task's return value.
    case success(JSONValue)
    /// FAILURE, with the error's type and message.
    case failure(TaskFailure)
    /// REVOKED: cancelled or expired; it will not run.
    case revoked(reason: String)
    /// Not ready: its state now (PENDING, RECEIVED, STARTED, PROGRESS, RETRY).
    case notReady(TaskState)
}

extension ConveyorClient {
    /// The result of task `id` now, without waiting: its outcome when Celery's result document says it is ready,
    /// else the state its record shows.
    ///
    /// - Throws: the ``RedisError`` of the reads.
    public func currentResult(of id: String) async throws -> TaskResult {
        if let meta = try await result(id), let state = meta.state, state.isReady {
            switch state {
            case .success: return .success(meta.result)
            case .revoked: return .revoked(reason: meta.failure?.message ?? "revoked")
            default: return .failure(meta.failure ?? TaskFailure(type: "UnknownError", message: "\(meta.result)"))
            }
        }
        return .notReady(try await status(id).state)
    }

    /// The result of task `id` once it is ready, waiting up to `timeout` (pushed by Redis pub/sub, not polled);
    /// ``TaskResult/notReady(_:)`` with the state it has then when the time runs out.
    ///
    /// - Throws: `CancellationError` when the calling task is cancelled, or the ``RedisError`` of the reads.
    public func awaitResult(of id: String, timeout: Duration) async throws -> TaskResult {
        do {
            return .success(try await ref(id: id).get(timeout: timeout))
        } catch let error as TaskError {
            return .failure(TaskFailure(type: error.type, message: error.message))
        } catch ConveyorError.revoked(_, let reason) {
            return .revoked(reason: reason)
        } catch ConveyorError.timeout {
            return .notReady(try await status(id).state)
        }
    }
}
