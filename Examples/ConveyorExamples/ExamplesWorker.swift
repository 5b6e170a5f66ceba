import Conveyor
import ConveyorPrometheus
import ConveyorWorker
import Logging
import ServiceLifecycle

extension Examples {
    /// Runs a worker for the examples until SIGTERM or SIGINT, then shuts it down gracefully. Shared by
    /// `conveyor-examples-worker` and `conveyor worker`.
    ///
    /// - Parameter configuration: queues, concurrency, servers (``ConveyorConfiguration/fromEnvironment(_:)``
    ///   reads `CONVEYOR_BROKER_URL` and `CONVEYOR_REDIS_URL`).
    /// - Throws: what ``ConveyorWorker/run()`` throws.
    ///   - limited: the options the `limitedTasks` run under (a rate limit, a concurrency cap).
    ///   - metrics: a Prometheus endpoint to serve beside the worker (``WorkerOptions/metricsEndpoint(logger:)``).
    public static func runWorker(
        _ configuration: WorkerConfiguration, logger: Logger, limited: TaskRunOptions = TaskRunOptions(),
        limitedTasks: Set<String> = [Limited.name], metrics: MetricsEndpoint? = nil
    ) async throws {
        let worker = ConveyorWorker(
            configuration: configuration, registry: registry(limited: limited, tasks: limitedTasks))
        // The example actors (Counter, Accumulator, Sleeper) are hosted beside the tasks.
        let actorHost = ConveyorActorHost(
            configuration: configuration.conveyor, registry: actors, hostID: configuration.workerID)
        var services: [any Service] = [worker, actorHost]
        if let metrics { services.append(metrics) }
        let group = ServiceGroup(
            configuration: .init(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
