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
    /// A Swift client puts a task that is not due yet straight into the Redis delay set (one script, no message
    /// yet); a worker's promoter publishes it when due. A message that arrives with a future `eta` anyway (from
    /// Celery, a retry) is parked there by the worker that receives it. Nothing waits in a worker's memory.
    public var countdown: Double?
    /// Run no earlier than this time; wins over ``countdown``. The same note applies.
    public var eta: Date?
    /// The producer's idempotency key: every submit with the same key within the key's TTL
    /// (``ConveyorConfiguration/idempotencyTTL``, 24 h) returns the same task id, from any producer, and the
    /// task is published once. Also sent as the `conveyor_idempotency_key` header (``TaskEnvelope/idempotencyKey``).
    ///
    /// The key is reserved in Redis (`P idem:<key>`) before the task is published and confirmed after; see
    /// docs/PROTOCOL.md, "Idempotency keys", for the rules a producer in another language follows.
    public var idempotencyKey: String?
    /// Refuse the submit with ``ConveyorError/queueFull(queue:bound:depth:)`` when the queue already holds this
    /// many ready messages (its depth by a passive declare). `nil`, the default, means no bound.
    ///
    /// Set it in ``TaskDefinition/defaultOptions`` so every producer of a definition applies the same bound.
    /// Concurrent producers may overshoot it by the submits in flight between their check and their publish.
    public var maxQueued: Int? = nil

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
