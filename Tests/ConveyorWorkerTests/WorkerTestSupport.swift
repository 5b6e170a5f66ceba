import ConveyorAMQP
import ConveyorExamples
import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

/// A worker run in-process on a queue and key prefix of the test's own, with a client and an admin broker
/// connection beside it; queues (and their dead-letter queues) and keys are deleted afterwards.
struct WorkerFixture {
    let client: ConveyorClient
    /// The test's own broker connection: publishes raw messages, reads queues, deletes them.
    let admin: AMQPConnection
    let prefix: String
    /// The queue the worker consumes.
    let queue: String
    let redisURL: String
    let usedQueues: LockedValue<[String]>

    var store: TaskStore { client.store }
    var redis: RedisClient { client.redis }
    var deadLetterQueue: String { queue + ".dlq" }

    static var policy: ReconnectPolicy { TestServers.policy }

    static func conveyorConfiguration(prefix: String, redisURL: String = TestServers.redisURL) -> ConveyorConfiguration
    {
        var configuration = ConveyorConfiguration(
            brokerURLs: [TestServers.amqpURL], redisURL: redisURL, keyPrefix: prefix, policy: policy)
        configuration.resultKeyPrefix = prefix
        // The worker's own warnings (dead letters, shutdown) are expected here; keep the test output readable.
        configuration.logger.logLevel = .error
        return configuration
    }

    /// Sets up the fixture and runs `body`; the worker is started by ``startWorker(_:registry:)``.
    static func with<T>(
        _ name: String, redisURL: String = TestServers.redisURL, _ body: (WorkerFixture) async throws -> T
    ) async throws -> T {
        let prefix = TestServers.uniqueName("test-\(name)") + ":"
        let client = try await ConveyorClient.connect(conveyorConfiguration(prefix: prefix, redisURL: redisURL))
        let admin: AMQPConnection
        do {
            admin = try await AMQPConnection.connect(
                AMQPConfiguration(url: TestServers.amqpURL, policy: policy, connectionName: "worker-test-admin"))
        } catch {
            await client.close()
            throw error
        }
        let queue = TestServers.uniqueName("worker-\(name)")
        let fixture = WorkerFixture(
            client: client, admin: admin, prefix: prefix, queue: queue, redisURL: redisURL,
            usedQueues: LockedValue([queue]))
        let result: Result<T, any Error>
        do {
            try await client.configuration.topology.ensure(queue, on: admin)
            result = .success(try await body(fixture))
        } catch {
            result = .failure(error)
        }
        for queue in fixture.usedQueues.current {
            _ = try? await admin.deleteQueue(queue)
            _ = try? await admin.deleteQueue(queue + ".dlq")
            // A Celery app in the test declares an exchange named after its queue (kombu's default).
            try? await admin.deleteExchange(queue)
        }
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
        await client.close()
        await admin.close()
        return try result.get()
    }

    /// A worker configuration for this fixture's queue and prefix, with short intervals so tests run fast.
    func workerConfiguration(concurrency: Int = 4, id: String? = nil) -> WorkerConfiguration {
        WorkerConfiguration(
            conveyor: Self.conveyorConfiguration(prefix: prefix, redisURL: redisURL), queues: [queue],
            concurrency: concurrency,
            workerID: id ?? TestServers.uniqueName("worker"), lease: .seconds(5),
            heartbeatInterval: .milliseconds(200), gracePeriod: .seconds(5), promoteInterval: .milliseconds(20))
    }

    /// Runs a worker for `body`'s duration, then shuts it down gracefully and waits for it.
    func withWorker<T>(
        _ configuration: WorkerConfiguration? = nil, registry: TaskRegistry = Examples.registry,
        _ body: (ConveyorWorker) async throws -> T
    ) async throws -> T {
        let worker = ConveyorWorker(configuration: configuration ?? workerConfiguration(), registry: registry)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await worker.run() }
            let result: Result<T, any Error>
            do {
                try await awaitConsumers(on: worker.configuration.queues[0], atLeast: 1)
                result = .success(try await body(worker))
            } catch {
                result = .failure(error)
            }
            worker.shutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Waits (bounded) until `queue` has at least `count` consumers.
    ///
    /// A precondition, not a measurement: while the parallel phase starts sixty suites on 2 cores (private
    /// RabbitMQ nodes booting among them) a worker can take well over 15 s to subscribe, so this waits a minute.
    func awaitConsumers(on queue: String, atLeast count: Int) async throws {
        try await eventually("\(count) consumer(s) on \(queue)", timeout: .seconds(60)) {
            (try await admin.queueInfo(queue)?.consumerCount ?? 0) >= count
        }
    }

    /// Publishes a raw message to the worker's queue, as any AMQP client could.
    func publishRaw(
        body: [UInt8], headers: AMQPTable = [:], contentType: String? = "application/json",
        correlationID: String? = nil,
        to queue: String? = nil
    ) async throws {
        let properties = AMQPProperties(
            contentType: contentType, contentEncoding: "utf-8", headers: headers, deliveryMode: .persistent,
            correlationId: correlationID)
        try await admin.publish(
            AMQPMessage(body: body, properties: properties), exchange: "", routingKey: queue ?? self.queue,
            mandatory: true)
    }

    /// Publishes a Celery protocol v2 message for `envelope` to the worker's queue.
    func publish(_ envelope: TaskEnvelope, to queue: String? = nil) async throws {
        try await publishRaw(
            body: Array(try envelope.celeryBody()), headers: AMQPTable(json: envelope.celeryHeaders),
            correlationID: envelope.id, to: queue)
    }

    /// The next `count` messages of the dead-letter queue, acked.
    func deadLetters(count: Int, timeout: Duration = .seconds(15)) async throws -> [AMQPDelivery] {
        let consumer = try await admin.consume(queue: deadLetterQueue, prefetch: UInt16(count))
        var deliveries: [AMQPDelivery] = []
        let deadline = ContinuousClock.now + timeout
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(until: deadline)
                await consumer.cancel()
            }
            for try await delivery in consumer {
                _ = delivery.ack()
                deliveries.append(delivery)
                if deliveries.count == count { break }
            }
            group.cancelAll()
        }
        await consumer.cancel()
        if deliveries.count < count {
            throw TestSupportError("only \(deliveries.count) of \(count) dead letters within \(timeout)")
        }
        return deliveries
    }

    /// Waits (bounded) for the task's state to be `state`.
    @discardableResult
    func awaitState(_ id: String, _ state: TaskState, timeout: Duration = .seconds(15)) async throws -> TaskStatus {
        var last = TaskStatus(id: id)
        try await eventually("task \(id) in state \(state) (last: \(last.state))", timeout: timeout) {
            last = try await store.status(id)
            return last.state == state
        }
        return last
    }
}

/// Polls `condition` every 20 ms until it holds, failing after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(15), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError("timed out after \(timeout) waiting for \(what)")
}

/// Polls `value` every 20 ms until it is not `nil` and returns it, failing after `timeout`.
func eventuallyValue<T>(
    _ what: String, timeout: Duration = .seconds(15), _ value: () async throws -> T?
) async throws -> T {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let found = try await value() { return found }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError("timed out after \(timeout) waiting for \(what)")
}

/// Watches the machine while a timing test runs: a Redis `PING` every 50 ms, timed, and how late this process
/// wakes from each 50 ms sleep. A disk that stalls Redis's AOF writes (Redis logs "Asynchronous AOF fsync is taking
/// too long") or a CPU taken by something else shows as a slow ping or a late wake, independently of what the
/// test measures; a test then says so rather than blaming the code under test for the machine.
final class StallProbe: Sendable {
    private let worst = LockedValue<(ping: Duration, wake: Duration)>((.zero, .zero))

    /// The slowest ping and the latest wake seen so far.
    var worstPing: Duration { worst.withLock { $0.ping } }
    var worstWake: Duration { worst.withLock { $0.wake } }

    /// Whether either exceeded `limit`: the machine stalled for about that long.
    func stalled(beyond limit: Duration) -> Bool { worstPing > limit || worstWake > limit }

    /// Probes until cancelled.
    func run(_ redis: RedisClient) async {
        let clock = ContinuousClock()
        while !Task.isCancelled {
            let asleep = clock.now
            do { try await Task.sleep(for: .milliseconds(50)) } catch { return }
            let late = clock.now - asleep - .milliseconds(50)
            let sent = clock.now
            _ = try? await redis.send(RedisCommand("PING"), timeout: .seconds(30))
            let ping = clock.now - sent
            worst.withLock { $0 = (max($0.ping, ping), max($0.wake, late)) }
        }
    }

    /// Runs `body` with a probe running beside it.
    static func watching<T: Sendable>(
        _ redis: RedisClient, _ body: (StallProbe) async throws -> T
    ) async throws -> T {
        let probe = StallProbe()
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await probe.run(redis) }
            defer { group.cancelAll() }
            return try await body(probe)
        }
    }
}
