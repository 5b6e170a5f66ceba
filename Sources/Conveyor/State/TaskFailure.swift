/// Why a task failed: the error's type name and message, as recorded in Redis and in Celery's
/// `{"exc_type", "exc_message", "exc_module"}` result.
public struct TaskFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Swift type name of the error (`DecodingError`, `ImageError`), or Celery's `exc_type`.
    public var type: String
    public var message: String

    /// A failure with an explicit type name and message.
    public init(type: String, message: String) {
        self.type = type
        self.message = message
    }

    /// The failure a thrown Swift error stands for: its unqualified type name and its description.
    public init(_ error: any Error) {
        if let failure = error as? TaskFailure {
            self = failure
            return
        }
        self.type = String(describing: Swift.type(of: error))
        self.message = String(describing: error)
    }

    public var description: String { "\(type): \(message)" }

    /// The `exc_module` Conveyor writes. No Python module has that name, so Celery's `AsyncResult` raises a
    /// generated exception class named `type` whose `args` are `(message,)`.
    public static let celeryModule = "conveyor"

    /// Celery's module for the errors of revoked and expired tasks, so Python raises the real `TaskRevokedError`.
    static let celeryRevokedModule = "celery.exceptions"
    static let revokedType = "TaskRevokedError"
    /// The type recorded for a message that was claimed more often than the attempt limit without an outcome.
    public static let poisonType = "PoisonMessage"
}
