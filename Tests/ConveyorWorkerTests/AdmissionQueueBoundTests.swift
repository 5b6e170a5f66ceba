import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Admission: queue bounds")
struct AdmissionQueueBoundTests {
    @Test(
        "maxQueued 100: the 101st submit fails with queueFull and leaves nothing; after the queue drains, submits succeed"
    )
    func boundThenDrain() async throws {
        try await WorkerFixture.with("bound") { f in
            var options = TaskOptions(queue: f.queue)
            options.maxQueued = 100
            var refs: [ObjectRef<Examples.Noop.Output>] = []
            for _ in 0..<100 { refs.append(try await f.client.submit(Examples.Noop.self, .init(), options: options)) }
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 100)

            var keyed = options
            keyed.idempotencyKey = "bound-key"
            await #expect(throws: ConveyorError.queueFull(queue: f.queue, bound: 100, depth: 100)) {
                try await f.client.submit(Examples.Noop.self, .init(), options: keyed)
            }
            // A batch counts as a whole: 2 more would not fit even beside 99.
            await #expect(throws: ConveyorError.self) {
                try await f.client.submitMany(Examples.Noop.self, [.init(), .init()], options: options)
            }
            var delayed = options
            delayed.countdown = 60
            await #expect(throws: ConveyorError.self) {
                try await f.client.submit(Examples.Noop.self, .init(), options: delayed)
            }
            // Nothing half-submitted: no message, no idempotency key, nothing delayed, no task record.
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 100)
            #expect(try await f.store.idempotencyTaskID("bound-key") == nil)
            #expect(try await f.redis.send(RedisCommand("ZCARD", f.store.keys.delayed)).int == 0)
            let records = try await f.redis.send(RedisCommand("KEYS", f.prefix + "task:*")).array ?? []
            #expect(records.isEmpty)
            let message = ConveyorError.queueFull(queue: f.queue, bound: 100, depth: 100).description
            #expect(message.contains("is full") && message.contains("100"))

            try await f.withWorker { _ in
                let (ready, pending) = try await f.client.wait(refs, timeout: .seconds(60))
                #expect(ready.count == 100 && pending.isEmpty)
                try await eventually("the queue drained") {
                    try await f.admin.queueInfo(f.queue)?.messageCount == 0
                }
                let after = try await f.client.submit(Examples.Noop.self, .init(), options: keyed)
                _ = try await after.get(timeout: .seconds(20))
                #expect(try await f.store.idempotencyTaskID("bound-key") == after.id)
            }
        }
    }

    @Test("a message over maxPayloadBytes is refused at submit with payloadTooLarge and leaves nothing behind")
    func payloadTooLarge() async throws {
        try await WorkerFixture.with("payload") { f in
            #expect(ConveyorConfiguration(brokerURLs: [], redisURL: "", keyPrefix: "").maxPayloadBytes == 16 << 20)
            var configuration = WorkerFixture.conveyorConfiguration(prefix: f.prefix)
            configuration.maxPayloadBytes = 1_024
            let client = try await ConveyorClient.connect(configuration)
            do {
                try await Self.refusesLargePayloads(f, client: client)
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }

    static func refusesLargePayloads(_ f: WorkerFixture, client: ConveyorClient) async throws {
        var options = TaskOptions(queue: f.queue)
        let big: [String: JSONValue] = ["a": .string(String(repeating: "x", count: 2_000)), "b": 1]
        do {
            _ = try await client.submit(name: Examples.Add.name, kwargs: big, options: options)
            Issue.record("a 2 KB message was submitted under a 1 KiB limit")
        } catch let error as ConveyorError {
            guard case .payloadTooLarge(let size, let limit) = error else { throw error }
            #expect(size > 2_000 && limit == 1_024)
            #expect(error.description.contains("over the limit of 1024"))
        }
        options.idempotencyKey = "payload-key"
        await #expect(throws: ConveyorError.self) {
            try await client.submit(name: Examples.Add.name, kwargs: big, options: options)
        }
        await #expect(throws: ConveyorError.self) {
            try await client.submitMany(
                Examples.Record.self,
                [.init(key: "k", token: "small"), .init(key: "k", token: String(repeating: "y", count: 2_000))],
                options: TaskOptions(queue: f.queue))
        }
        // Nothing half-submitted: no message (not even the small one of the batch), no key left reserved.
        #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
        #expect(try await f.store.idempotencyTaskID("payload-key") == nil)
        // Under the limit the same client submits as usual.
        _ = try await client.submit(name: Examples.Add.name, kwargs: ["a": 1, "b": 2], options: options)
        #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 1)
    }
}
