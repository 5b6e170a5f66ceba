import ConveyorRedis

/// What Redis knows about one task: its ``TaskState`` and the task record's details.
///
/// A task Redis knows nothing about is ``TaskState/pending``, as in Celery. A task only Celery wrote (a Python
/// worker ran it) has its state, error and progress from the Celery result meta and no Conveyor details.
public struct TaskStatus: Sendable, Hashable {
    public var id: String
    public var state: TaskState
    public var name: String?
    public var queue: String?
    /// When a worker first claimed it, in Unix milliseconds.
    public var receivedMs: Int64?
    /// When the current (or last) run started.
    public var startedMs: Int64?
    /// When it reached a ready state (or its last RETRY).
    public var finishedMs: Int64?
    /// How many times a worker claimed it to run.
    public var attempts: Int
    public var retries: Int
    /// The worker that runs (or last ran) it.
    public var worker: String?
    public var progress: TaskProgress?
    /// The error of a FAILURE, of the last RETRY, or the reason of a REVOKED task.
    public var error: TaskFailure?
    /// Why the state was decided by Conveyor rather than the task: `expired`, a revocation reason, `poison`, an
    /// envelope error.
    public var reason: String?
    /// The worker holding the run lease and until when (Unix ms); `nil` when nobody runs it.
    public var leaseOwner: String?
    public var leaseUntilMs: Int64?
    /// Where this status came from.
    public var source: Source

    public enum Source: Sendable, Hashable {
        /// Conveyor's task record (`P task:<id>`).
        case taskRecord
        /// Only Celery's result meta exists (a Celery worker ran the task).
        case celeryResult
        /// Redis has nothing: the task is PENDING (not yet claimed, unknown, or expired).
        case none
    }

    /// A status with no details: what a task Redis does not know looks like.
    public init(id: String, state: TaskState = .pending, source: Source = .none) {
        self.id = id
        self.state = state
        self.source = source
        attempts = 0
        retries = 0
    }
}

extension TaskStatus {
    /// Reads the task record's hash fields (`HGETALL` as alternating field and value).
    init(id: String, hashReply fields: [RESPValue]) {
        self.init(id: id, source: .taskRecord)
        var progressFraction: Double?
        var progressMessage: String?
        var errorType: String?
        var errorMessage: String?
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            guard let field = fields[index].string else { continue }
            let value = fields[index + 1]
            switch field {
            case "state": state = value.string.flatMap(TaskState.init(rawValue:)) ?? .pending
            case "name": name = value.string
            case "queue": queue = value.string
            case "received_ms": receivedMs = value.int.map(Int64.init)
            case "started_ms": startedMs = value.int.map(Int64.init)
            case "finished_ms": finishedMs = value.int.map(Int64.init)
            case "attempts": attempts = value.int ?? 0
            case "retries": retries = value.int ?? 0
            case "worker": worker = value.string
            case "progress": progressFraction = value.double
            case "progress_message": progressMessage = value.string
            case "error_type": errorType = value.string
            case "error_message": errorMessage = value.string
            case "reason": reason = value.string
            case "lease_owner": leaseOwner = value.string
            case "lease_until_ms": leaseUntilMs = value.int.map(Int64.init)
            default: break
            }
        }
        if let progressFraction {
            progress = TaskProgress(fraction: progressFraction, message: progressMessage?.nilIfEmpty)
        }
        if let errorType, !errorType.isEmpty {
            error = TaskFailure(type: errorType, message: errorMessage ?? "")
        }
    }

    /// A status from Celery's result meta only.
    init(id: String, meta: CeleryResultMeta) {
        self.init(id: id, state: meta.state ?? .started, source: .celeryResult)
        if meta.state == nil {
            // A custom Celery state: the task is running and reporting something.
            reason = meta.status
        }
        error = meta.failure
        progress = meta.progress
        finishedMs = meta.dateDoneValue.map(MillisecondClock.milliseconds)
        name = meta.extended?.name
        queue = meta.extended?.queue
        worker = meta.extended?.worker
        retries = meta.extended?.retries ?? 0
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
