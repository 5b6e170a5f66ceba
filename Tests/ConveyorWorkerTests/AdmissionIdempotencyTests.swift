import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Admission: idempotency keys")
struct AdmissionIdempotencyTests {
    @Test("50 concurrent submits with one key from 5 producers: one task id, one run")
    func concurrentProducers() async throws {
        try await WorkerFixture.with("idem-concurrent") { f in
            var others: [ConveyorClient] = []
            let outcome: Result<Void, any Error>
            do {
                for _ in 1..<5 {
                    others.append(
                        try await ConveyorClient.connect(WorkerFixture.conveyorConfiguration(prefix: f.prefix)))
                }
                try await Self.fiftySubmits(f, producers: [f.client] + others)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            for other in others { await other.close() }
            try outcome.get()
        }
    }

    static func fiftySubmits(_ f: WorkerFixture, producers producersNow: [ConveyorClient]) async throws {
        let list = f.prefix + "runs"
        try await f.withWorker { _ in
            let refs = try await withThrowingTaskGroup(of: ObjectRef<String>.self) { group in
                for index in 0..<50 {
                    let producer = producersNow[index % producersNow.count]
                    var options = TaskOptions(queue: f.queue)
                    options.idempotencyKey = "order-17"
                    group.addTask {
                        try await producer.submit(
                            Examples.Record.self, .init(key: list, token: "t\(index)"), options: options)
                    }
                }
                var refs: [ObjectRef<String>] = []
                for try await ref in group { refs.append(ref) }
                return refs
            }
            let ids = Set(refs.map(\.id))
            #expect(ids.count == 1, "\(ids.count) task ids for one key")
            // Every ref, from every producer, sees the one run's result.
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for ref in refs { group.addTask { try await ref.get(timeout: .seconds(30)) } }
                var tokens: Set<String> = []
                for try await token in group { tokens.insert(token) }
                return tokens
            }
            #expect(tokens.count == 1)
            try await Task.sleep(for: .milliseconds(300))
            let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
            #expect(runs == Array(ids), "the task ran once")
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
            #expect(try await f.store.idempotencyTaskID("order-17") == ids.first)
        }
    }

    @Test("a producer that died between reserving a key and publishing: the next submit takes over its id")
    func deadProducerTakenOver() async throws {
        try await WorkerFixture.with("idem-takeover") { f in
            let list = f.prefix + "runs"
            try await f.withWorker { _ in
                // What a producer leaves behind when it dies right after reserving: a pending reservation, no
                // message.
                let reservation = try await f.store.reserveIdempotencyKey(
                    "job-1", candidate: "dead-producer-task", pending: .seconds(1), ttl: .seconds(60))
                #expect(reservation == .reserved(id: "dead-producer-task"))
                var options = TaskOptions(queue: f.queue)
                options.idempotencyKey = "job-1"
                let started = ContinuousClock.now
                let ref = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "x"), options: options)
                #expect(ref.id == "dead-producer-task", "the takeover keeps the id a waiter may already hold")
                #expect(ContinuousClock.now - started >= .milliseconds(500), "it waited for the reservation to lapse")
                #expect(try await ref.get(timeout: .seconds(20)) == "x")
                let again = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "y"), options: options)
                #expect(again.id == ref.id)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await f.redis.send(RedisCommand("LLEN", list)).int == 1)
            }
        }
    }

    @Test("the same key after a restart of RabbitMQ, Redis (AOF) and the worker still names the same task")
    func survivesFullRestart() async throws {
        try await withPrivateServers(redisAppendfsync: .always) { rabbit, redis in
            let prefix = TestServers.uniqueName("idem-restart") + ":"
            let queue = TestServers.uniqueName("idem-restart")
            var configuration = WorkerFixture.conveyorConfiguration(prefix: prefix, redisURL: redis.url)
            configuration.brokerURLs = [rabbit.url]
            let list = prefix + "runs"
            var options = TaskOptions(queue: queue)
            options.idempotencyKey = "invoice-2026-001"

            let first = try await Self.withClientAndWorker(configuration, queue: queue) { client in
                let ref = try await client.submit(Examples.Record.self, .init(key: list, token: "a"), options: options)
                #expect(try await ref.get(timeout: .seconds(30)) == "a")
                return ref.id
            }

            try await rabbit.restart()
            try await redis.kill()  // a crash: only what the append-only file holds survives
            try await redis.startAgain()

            try await Self.withClientAndWorker(configuration, queue: queue) { client in
                let ref = try await client.submit(Examples.Record.self, .init(key: list, token: "b"), options: options)
                #expect(ref.id == first)
                #expect(try await ref.get(timeout: .seconds(30)) == "a", "the first run's result, not a new run")
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await client.redis.send(RedisCommand("LLEN", list)).int == 1)
            }
        }
    }

    /// A client and an in-process worker on `queue`, for `body`'s duration.
    static func withClientAndWorker<T>(
        _ configuration: ConveyorConfiguration, queue: String, _ body: (ConveyorClient) async throws -> T
    ) async throws -> T {
        let client = try await ConveyorClient.connect(configuration)
        let worker = ConveyorWorker(
            configuration: WorkerConfiguration(
                conveyor: configuration, queues: [queue], concurrency: 2, lease: .seconds(5),
                heartbeatInterval: .milliseconds(200), gracePeriod: .seconds(5)),
            registry: Examples.registry)
        let result: Result<T, any Error>
        do {
            result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                let result: Result<T, any Error>
                do {
                    result = .success(try await body(client))
                } catch {
                    result = .failure(error)
                }
                worker.shutdown()
                try await group.waitForAll()
                return result
            }
        } catch {
            result = .failure(error)
        }
        await client.close()
        return try result.get()
    }
}
