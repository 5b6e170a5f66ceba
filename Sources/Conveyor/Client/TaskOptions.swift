import Foundation

/// How one task is submitted: where it goes and the limits it runs under.
public struct TaskOptions: Sendable, Equatable {
    /// The queue (routing key on the default exchange). Empty (the default) means the client's
    /// ``ConveyorConfiguration/defaultQueue``, which is `celery`, Celery's default, unless configured.
    public var queue: String
    /// 0–9, higher first (Celery's range). Only a queue declared with `x-max-priority` orders by it; Conveyor's
    /// quorum queues ignore it.
    public var priority: UInt8?
    /// After this time the task is not run: a worker records it REVOKED (`expired`).
    public var expires: Date?
    /// Celery's `time_limit` (hard) and `soft_time_limit`, in seconds.
    public var timeLimit: TaskEnvelope.TimeLimit
    /// Record the state but write no result (Celery's `ignore_result`); ``ObjectRef/get(timeout:)`` then waits in
    /// vain, use ``ObjectRef/status()``.
    public var ignoreResult: Bool
    /// Run no earlier than this many seconds from now. Sets the envelope's `eta`.
    ///
    /// The message is published at once with its `eta`; a Conveyor worker that receives it early parks it in the
    /// Redis delay set (never in its memory) and the promoter publishes it again when due. Celery workers honour
    /// the `eta` themselves.
    public var countdown: Double?
    /// Run no earlier than this time; wins over ``countdown``. The same note applies.
    public var eta: Date?
    /// The producer's idempotency key, sent as the `conveyor_idempotency_key` header
    /// (``TaskEnvelope/idempotencyKey``): submitting twice with the same key is meant to name one task.
    ///
    /// - Important: for now the key is only carried in the message; nothing deduplicates by it yet. Admission
    ///   control, a later step, will enforce it (the idempotency table in Redis).
    public var idempotencyKey: String?

    public init(
        queue: String = "", priority: UInt8? = nil, expires: Date? = nil,
        timeLimit: TaskEnvelope.TimeLimit = .init(), ignoreResult: Bool = false, countdown: Double? = nil,
        eta: Date? = nil, idempotencyKey: String? = nil
    ) {
        self.queue = queue
        self.priority = priority.map { min($0, 9) }
        self.expires = expires
        self.timeLimit = timeLimit
        self.ignoreResult = ignoreResult
        self.countdown = countdown
        self.eta = eta
        self.idempotencyKey = idempotencyKey
    }

    /// The `eta` to write: ``eta``, else now plus ``countdown``.
    func resolvedETA(now: Date = Date()) -> Date? {
        eta ?? countdown.map { now.addingTimeInterval($0) }
    }
}
