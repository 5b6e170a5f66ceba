/// A task's state, with Celery's names so Celery tools read them unchanged.
public enum TaskState: String, Sendable, Codable, CaseIterable {
    /// Unknown to the backend: not yet received, or its record expired.
    case pending = "PENDING"
    /// A worker took the message.
    case received = "RECEIVED"
    case started = "STARTED"
    /// Running, with progress reported (Conveyor's; Celery shows custom states as they are).
    case progress = "PROGRESS"
    /// Failed and scheduled to run again.
    case retry = "RETRY"
    case success = "SUCCESS"
    case failure = "FAILURE"
    /// Cancelled or expired; it will not run (again).
    case revoked = "REVOKED"

    /// The task has an outcome and will not change state again.
    public var isReady: Bool {
        switch self {
        case .success, .failure, .revoked: return true
        default: return false
        }
    }
}
