import Conveyor
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging

/// One ``ConveyorWorker/run()``: the connections, the subscriptions, the running tasks, the shutdown state.
final class WorkerSession: Sendable {
    let configuration: WorkerConfiguration
    let registry: TaskRegistry
    let logger: Logger
    let metrics: WorkerMetrics
    let broker: AMQPConnection
    let redis: RedisClient
    let store: TaskStore
    let topology: TaskQueueTopology
    let running = RunningTasks()
    /// The concurrency-cap slots held by running tasks (WorkerSession+Limits.swift).
    let heldSlots = HeldSlots()
    let slots: SlotPool
    let startedMs = MillisecondClock.now()
    let host = ProcessInfo.processInfo.hostName
    let pid = Int(ProcessInfo.processInfo.processIdentifier)
    private let phase = LockedValue<Phase>(.running)
    private let consumers = LockedValue<[AMQPConsumer]>([])
    /// Why the worker stopped on its own, if it did; ``run()`` throws it.
    private let failure = LockedValue<WorkerError?>(nil)
    /// Resumed once, when a shutdown is asked for.
    private let shutdownSignal: AsyncStream<Bool>
    private let shutdownContinuation: AsyncStream<Bool>.Continuation

    enum Phase: Equatable {
        case running
        /// Not taking new work; running tasks have the grace period.
        case draining
        /// Grace period over (or cancelled): every remaining run is abandoned and requeued.
        case stopping
    }

    private init(
        worker: ConveyorWorker, broker: AMQPConnection, redis: RedisClient, store: TaskStore
    ) {
        configuration = worker.configuration
        registry = worker.registry
        logger = worker.logger
        metrics = worker.metrics
        self.broker = broker
        self.redis = redis
        self.store = store
        topology = worker.configuration.conveyor.topology
        slots = SlotPool(slots: worker.configuration.concurrency)
        (shutdownSignal, shutdownContinuation) = AsyncStream.makeStream(of: Bool.self)
    }

    /// Connects to both servers and makes sure every queue and its dead-letter queue exist.
    static func start(worker: ConveyorWorker) async throws -> WorkerSession {
        let conveyor = worker.configuration.conveyor
        let (broker, redis) = try await conveyor.connectServers(
            connectionName: "conveyor-worker \(worker.configuration.workerID)")
        let store = TaskStore(
            redis: redis,
            configuration: .init(keys: RedisKeys(prefix: conveyor.keyPrefix, resultPrefix: conveyor.resultKeyPrefix)))
        let session = WorkerSession(worker: worker, broker: broker, redis: redis, store: store)
        do {
            for queue in worker.configuration.queues {
                try await session.topology.ensure(queue, on: broker)
                try await session.topology.ensureDeadLetterQueue(for: queue, on: broker)
            }
        } catch {
            await session.close()
            throw error
        }
        return session
    }

    func close() async {
        await broker.close()
        await redis.close()
    }

    var isTakingWork: Bool { phase.withLock { $0 == .running } }
    var isStopping: Bool { phase.withLock { $0 == .stopping } }

    /// Asks for a shutdown: graceful (stop consuming, drain within the grace period), or immediate (abandon and
    /// requeue everything running now).
    func requestShutdown(immediately: Bool = false) {
        let changed = phase.withLock { phase in
            let old = phase
            if immediately { phase = .stopping } else if phase == .running { phase = .draining }
            return old != phase
        }
        guard changed else { return }
        shutdownContinuation.yield(immediately)
        if immediately { abandonRunning() }
    }

    private func abandonRunning() {
        for task in running.all {
            task.cancel(.shutdown)
            task.settlement.settle(.abandoned)
        }
    }

    /// Consumes every queue until shutdown, with the heartbeat and the delay-set promoter alongside.
    func run() async throws {
        logger.info(
            "worker started",
            metadata: [
                "queues": .array(configuration.queues.map { .string($0) }),
                "concurrency": "\(configuration.concurrency)", "tasks": .array(registry.names.map { .string($0) }),
            ])
        await beat()
        await publishLimits()
        // Subscribed before any delivery can start a run, so a revoke published for a task this worker runs is
        // never missed; when Redis is not there yet the loop subscribes later and heartbeats cover the gap.
        let revocations: RedisSubscription?
        do {
            revocations = try await redis.subscriber.subscribe(
                [store.keys.revokeChannel(worker: configuration.workerID)], timeout: .seconds(5))
        } catch {
            logger.debug("revoke channel unavailable at start; retrying later", metadata: ["error": "\(error)"])
            revocations = nil
        }
        let prefetch = UInt16(clamping: configuration.concurrency)
        var subscribed: [AMQPConsumer] = []
        do {
            for queue in configuration.queues {
                subscribed.append(
                    try await broker.consume(
                        queue: queue, prefetch: prefetch, consumerTag: "\(configuration.workerID).\(queue)"))
            }
        } catch {
            for consumer in subscribed { await consumer.cancel() }
            revocations?.unsubscribe()
            await finishRun()
            throw error
        }
        consumers.withLock { $0 = subscribed }
        // A shutdown asked for while subscribing: the watcher below cancels what was just subscribed.
        await withTaskGroup(of: Void.self) { services in
            services.addTask { await self.heartbeatLoop() }
            services.addTask { await self.promoterLoop() }
            services.addTask { await self.revocationLoop(revocations) }
            services.addTask { await self.periodicLoop() }
            services.addTask { await self.shutdownWatcher() }
            await withTaskGroup(of: Void.self) { loops in
                for consumer in subscribed { loops.addTask { await self.consumeLoop(consumer) } }
            }
            services.cancelAll()
        }
        await finishRun()
        if let failure = failure.withLock({ $0 }) { throw failure }
        logger.info("worker stopped")
    }

    private func finishRun() async {
        shutdownContinuation.finish()
        do {
            try await store.removeWorker(configuration.workerID)
        } catch {
            logger.debug("could not remove the worker record", metadata: ["error": "\(error)"])
        }
        await close()
    }

    /// Waits for a shutdown request: cancels the subscriptions, then gives running tasks the grace period.
    private func shutdownWatcher() async {
        var signals = shutdownSignal.makeAsyncIterator()
        guard let immediately = await signals.next() else { return }
        logger.info(
            "shutting down: no new work",
            metadata: ["running": "\(running.count)", "grace": "\(configuration.gracePeriod)"])
        for consumer in consumers.withLock({ $0 }) { await consumer.cancel() }
        if immediately { return }
        // Sleeps through the grace period unless the run ends first (this task is then cancelled).
        do {
            try await Task.sleep(for: configuration.gracePeriod)
        } catch {
            return
        }
        if running.count > 0 {
            logger.warning(
                "grace period over: cancelling and requeueing the running tasks",
                metadata: ["running": "\(running.count)"])
        }
        phase.withLock { $0 = .stopping }
        abandonRunning()
    }

    /// Takes deliveries from one subscription and runs each in a slot; returns when the subscription ends and the
    /// deliveries already received are handled. A subscription that ends without a shutdown (the broker cancelled
    /// it and it could not be renewed) shuts the whole worker down gracefully, and ``run()`` then throws: a worker
    /// that silently stopped serving one of its queues would be worse than one that exits and is restarted.
    private func consumeLoop(_ consumer: AMQPConsumer) async {
        await withDiscardingTaskGroup { tasks in
            do {
                for try await delivery in consumer {
                    await slots.acquire()
                    tasks.addTask {
                        await self.handle(delivery, queue: consumer.queue)
                        self.slots.release()
                    }
                }
                if isTakingWork { fail(.consumerEnded(queue: consumer.queue, reason: "the subscription was closed")) }
            } catch {
                fail(.consumerEnded(queue: consumer.queue, reason: String(describing: error)))
            }
        }
    }

    private func fail(_ error: WorkerError) {
        logger.error("a subscription ended; shutting the worker down", metadata: ["error": "\(error)"])
        failure.withLock { $0 = $0 ?? error }
        requestShutdown()
    }
}
