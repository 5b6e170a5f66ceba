/// A worker's heartbeat record (`P worker:<id>`).
public struct WorkerRecord: Sendable, Hashable {
    /// Unique per worker process (e.g. `host:pid:random`): leases are held under this id.
    public var id: String
    public var host: String
    public var pid: Int
    public var queues: [String]
    /// Execution slots.
    public var slots: Int
    /// The ids of the tasks it runs.
    public var running: [String]
    /// When the worker started (Unix ms).
    public var startedMs: Int64
    /// When it last beat (Unix ms); written by the heartbeat script.
    public var lastBeatMs: Int64?

    /// A record for ``TaskStore/heartbeat(_:lease:expireAfter:now:)``; `lastBeatMs` is set by Redis.
    public init(
        id: String, host: String, pid: Int, queues: [String], slots: Int, running: [String] = [],
        startedMs: Int64, lastBeatMs: Int64? = nil
    ) {
        self.id = id
        self.host = host
        self.pid = pid
        self.queues = queues
        self.slots = slots
        self.running = running
        self.startedMs = startedMs
        self.lastBeatMs = lastBeatMs
    }
}

/// What a lease renewal (or heartbeat) found.
public struct LeaseRenewal: Sendable, Hashable {
    /// Leases still this worker's, now extended.
    public var renewed: [String]
    /// Ids whose lease is no longer this worker's (another worker took over, or the task has an outcome): stop
    /// working on them, their writes would be fenced.
    public var lost: [String]
    /// Ids with a revocation tombstone: stop them and record REVOKED.
    public var revoked: [String]
}
