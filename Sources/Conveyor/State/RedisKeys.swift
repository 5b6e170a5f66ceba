/// The names of every Redis key Conveyor's task state uses (docs/PROTOCOL.md, "Redis schema").
///
/// All keys start with ``prefix`` except Celery's result key, which Celery clients read by its exact name,
/// `celery-task-meta-<id>`, optionally behind ``resultPrefix``.
public struct RedisKeys: Sendable, Hashable {
    /// Prepended to every Conveyor key; `conveyor:` by default.
    public let prefix: String
    /// Prepended to `celery-task-meta-<id>`; empty by default. It follows Celery's
    /// `result_backend_transport_options={"global_keyprefix": …}`: a prefix that does not end in one of `:_-.`
    /// gets `_` appended, so the same setting names the same keys on both sides.
    public let resultPrefix: String

    /// The part of the result key before the task id, as Celery's redis backend names it.
    public static let celeryResultKeyPrefix = "celery-task-meta-"

    /// Key names under `prefix`, result keys under `resultPrefix` (see ``resultPrefix`` for Celery's rule).
    public init(prefix: String = "conveyor:", resultPrefix: String = "") {
        self.prefix = prefix
        if let last = resultPrefix.last, !":_-.".contains(last) {
            self.resultPrefix = resultPrefix + "_"
        } else {
            self.resultPrefix = resultPrefix
        }
    }

    /// `celery-task-meta-<id>`: the Celery result meta (JSON), also the channel it is published on.
    public func result(_ id: String) -> String { resultPrefix + Self.celeryResultKeyPrefix + id }

    /// `P task:<id>`: the task record (hash).
    public func task(_ id: String) -> String { prefix + "task:" + id }

    /// `P state:<STATE>`: ids in that state (sorted set, score = ms the state was entered).
    public func state(_ state: TaskState) -> String { prefix + "state:" + state.rawValue }

    /// `P fence`: the counter fencing tokens come from (no TTL).
    public var fence: String { prefix + "fence" }

    /// `P revoked:<id>`: a revocation tombstone; its value is the reason.
    public func revoked(_ id: String) -> String { prefix + "revoked:" + id }

    /// `P notify:<client>`: the pub/sub channel on which a client learns which of its tasks became ready.
    public func notify(_ client: String) -> String { prefix + "notify:" + client }

    /// `P delayed`: ids waiting for their due time (sorted set, score = due ms).
    public var delayed: String { prefix + "delayed" }

    /// `P delayed:msg`: id → the message to publish when due (hash of JSON texts).
    public var delayedMessages: String { prefix + "delayed:msg" }

    /// `P delayed:inflight`: ids being published (sorted set, score = ms after which the promotion is retried).
    public var delayedInFlight: String { prefix + "delayed:inflight" }

    /// `P idem:<key>`: an idempotency key (string `pending:<until ms>:<id>` or `confirmed:<id>`; TTL the key's).
    public func idempotency(_ key: String) -> String { prefix + "idem:" + key }

    /// The channel a worker listens on for revocations of the tasks it runs (the revoke script publishes the id).
    public func revokeChannel(worker id: String) -> String { prefix + "revoke:" + id }

    /// `P worker:<id>`: a worker's heartbeat record (hash).
    public func worker(_ id: String) -> String { prefix + "worker:" + id }

    /// `P workers`: live workers (sorted set, score = ms of the last beat).
    public var workers: String { prefix + "workers" }
}
