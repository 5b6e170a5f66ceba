import Conveyor
import Foundation
import Logging

/// How a worker runs: what it consumes, how much at once, and the limits it enforces.
public struct WorkerConfiguration: Sendable {
    /// The servers, key prefix, queue topology, reconnect policy and logger (shared with producers).
    public var conveyor: ConveyorConfiguration
    /// The queues to consume; `["celery"]`, Celery's default, unless set.
    public var queues: [String]
    /// Execution slots: how many tasks run at once. Each queue's prefetch equals it, so the worker never holds
    /// more messages than it can run (DESIGN §5.5).
    public var concurrency: Int
    /// This worker's id in Redis (leases, heartbeats): `conveyor@<host>.<pid>.<random hex>` unless set. Host and
    /// pid alone repeat across containers that share the host's name (host networking) and start their processes
    /// at the same pid, and two workers under one id would take each other's leases.
    public var workerID: String
    /// How long a claim lasts without renewal. Heartbeats renew it; after a crash, the task runs elsewhere once it
    /// has passed.
    public var lease: Duration
    /// How often the worker records itself and renews its leases (well under ``lease``). Its record lives three
    /// intervals, and at least 15 s, without a beat.
    public var heartbeatInterval: Duration
    /// On shutdown, how long running tasks may take to finish before they are cancelled and requeued.
    public var gracePeriod: Duration
    /// Bodies larger than this are dead-lettered unread (16 MiB by default).
    public var maxPayloadBytes: Int
    /// A task claimed this many times without an outcome (each claim's worker died) is dead-lettered as poison.
    public var maxDeliveries: Int
    /// How often the delay set is checked for due tasks (retries, countdowns, etas): a due task is published at
    /// most this long after its due time when nothing else is late. A promotion this worker took but never
    /// confirmed (it died) is handed out again after ``lease``.
    public var promoteInterval: Duration
    /// Tasks the fleet submits on a schedule (``PeriodicTask``); one worker, elected by a Redis lease, submits
    /// each tick. Give every worker of the fleet the same list; empty (the default) keeps this worker out of the
    /// election.
    public var periodic: [PeriodicTask] = []
    /// How long the periodic scheduler's leader lease lasts without renewal (renewed every third of it): after a
    /// leader dies, another worker leads within about this long. 5 s by default.
    public var periodicLease: Duration = .seconds(5)

    /// - Parameters:
    ///   - conveyor: servers and shared settings, ``ConveyorConfiguration/fromEnvironment(_:)`` by default.
    public init(
        conveyor: ConveyorConfiguration = .fromEnvironment(), queues: [String] = ["celery"], concurrency: Int = 8,
        workerID: String? = nil, lease: Duration = .seconds(30), heartbeatInterval: Duration = .seconds(5),
        gracePeriod: Duration = .seconds(30), maxPayloadBytes: Int = 16 << 20, maxDeliveries: Int = 5,
        promoteInterval: Duration = .milliseconds(50)
    ) {
        self.conveyor = conveyor
        self.queues = queues.isEmpty ? [conveyor.defaultQueue] : queues
        self.concurrency = max(1, concurrency)
        let info = ProcessInfo.processInfo
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        self.workerID = workerID ?? "conveyor@\(info.hostName).\(info.processIdentifier).\(suffix)"
        self.lease = lease
        self.heartbeatInterval = heartbeatInterval
        self.gracePeriod = gracePeriod
        self.maxPayloadBytes = max(1, maxPayloadBytes)
        self.maxDeliveries = max(1, maxDeliveries)
        self.promoteInterval = promoteInterval
    }
}
