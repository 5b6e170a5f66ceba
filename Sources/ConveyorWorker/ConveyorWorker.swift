import Conveyor
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Logging
import ServiceLifecycle

/// A worker process's runtime: consumes task queues and runs the registered implementations (DESIGN §5).
///
/// ```swift
/// var registry = TaskRegistry()
/// registry.register(Add.self) { input, _ in input.a + input.b }
/// let worker = ConveyorWorker(configuration: .init(queues: ["celery"], concurrency: 8), registry: registry)
/// let group = ServiceGroup(configuration: .init(
///     services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
///
/// For each message: claim it in Redis (a redelivered task that already finished is skipped), run it in one of
/// ``WorkerConfiguration/concurrency`` slots under its time limits, record the outcome (or schedule a retry), and
/// only then ack. A message that cannot run (malformed, unknown task, wrong input types, too large, poison) is
/// recorded FAILURE and moved to its queue's dead-letter queue with the reason in its headers.
///
/// On graceful shutdown (SIGTERM, SIGINT through swift-service-lifecycle) it stops consuming, lets running tasks
/// finish within ``WorkerConfiguration/gracePeriod``, then cancels the rest and requeues their messages.
///
/// - Important: ``run()`` may be called once. Tasks run on the cooperative pool; the broker and Redis connections
///   each have their own thread (ConveyorIO).
public final class ConveyorWorker: Service, Sendable {
    public let configuration: WorkerConfiguration
    let registry: TaskRegistry
    let logger: Logger
    let metrics: WorkerMetrics
    /// What ``run()`` set up; `nil` before and after it.
    let session = LockedValue<WorkerSession?>(nil)
    /// A shutdown asked for before ``run()`` created its session.
    let shutdownRequested = LockedValue(false)

    /// A worker for `registry`'s tasks. Nothing connects until ``run()``.
    public init(configuration: WorkerConfiguration, registry: TaskRegistry) {
        self.configuration = configuration
        self.registry = registry
        var logger = configuration.conveyor.logger
        logger[metadataKey: "conveyor.worker"] = .string(configuration.workerID)
        self.logger = logger
        self.metrics = WorkerMetrics()
    }

    /// Connects, consumes until a graceful shutdown (or cancellation), drains, and disconnects.
    ///
    /// - Throws: ``ConveyorError/invalidConfiguration(_:)`` for a bad URL, the first connect error of either
    ///   server, ``ConveyorError/queueMismatch(queue:serverText:)`` when a queue cannot be used, or
    ///   ``WorkerError/consumerEnded(queue:reason:)`` when a subscription ends without a shutdown.
    public func run() async throws {
        let session = try await WorkerSession.start(worker: self)
        self.session.withLock { $0 = session }
        defer { self.session.withLock { $0 = nil } }
        if shutdownRequested.withLock({ $0 }) { session.requestShutdown() }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await session.run()
            } onCancel: {
                session.requestShutdown(immediately: true)
            }
        } onGracefulShutdown: {
            session.requestShutdown()
        }
    }

    /// Starts a graceful shutdown, as SIGTERM does under a `ServiceGroup`: stop consuming, let running tasks
    /// finish within the grace period, requeue the rest; ``run()`` returns when done.
    public func shutdown() {
        shutdownRequested.withLock { $0 = true }
        session.withLock { $0 }?.requestShutdown()
    }

    /// The ids of the tasks running now.
    public var runningTaskIDs: [String] { session.withLock { $0 }?.running.ids ?? [] }
}

/// Why a worker stopped on its own.
public enum WorkerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A queue's subscription ended without a shutdown (the broker cancelled it and it could not be renewed).
    case consumerEnded(queue: String, reason: String)

    public var description: String {
        switch self {
        case .consumerEnded(let queue, let reason): "the subscription to queue '\(queue)' ended: \(reason)"
        }
    }
}
