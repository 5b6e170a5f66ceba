import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// `images.resize(url, width) -> String`, the example.
enum Resize: TaskDefinition {
    static let name = "images.resize"
    struct Input: Codable, Sendable, Equatable {
        var url: String
        var width: Int
    }
    typealias Output = String
}

/// `examples.add(a, b) -> Int`, with Celery positional argument names.
enum Add: TaskDefinition {
    static let name = "examples.add"
    struct Input: Codable, Sendable, Equatable {
        var a: Int
        var b: Int
    }
    typealias Output = Int
    static let argumentNames = ["a", "b"]
}

/// A client under a key prefix of its own (result keys included), a second broker connection that plays the
/// worker, and the queues a test used; everything is deleted afterwards.
struct ClientFixture {
    let client: ConveyorClient
    /// The test's own broker connection: consumes as a worker would, declares and deletes queues.
    let admin: AMQPConnection
    let prefix: String
    let usedQueues: LockedValue<[String]>

    var store: TaskStore { client.store }

    static var policy: ReconnectPolicy { TestServers.policy }

    static func configuration(prefix: String) -> ConveyorConfiguration {
        var configuration = ConveyorConfiguration(
            brokerURLs: [TestServers.amqpURL], redisURL: TestServers.redisURL, keyPrefix: prefix, policy: policy)
        configuration.resultKeyPrefix = prefix
        return configuration
    }

    static func with<T>(_ name: String = "client", _ body: (ClientFixture) async throws -> T) async throws -> T {
        let prefix = TestServers.uniqueName("test-\(name)") + ":"
        let client = try await ConveyorClient.connect(configuration(prefix: prefix))
        let admin: AMQPConnection
        do {
            admin = try await AMQPConnection.connect(
                AMQPConfiguration(url: TestServers.amqpURL, policy: policy, connectionName: "client-test-admin"))
        } catch {
            await client.close()
            throw error
        }
        let fixture = ClientFixture(client: client, admin: admin, prefix: prefix, usedQueues: LockedValue([]))
        let result: Result<T, any Error>
        do {
            result = .success(try await body(fixture))
        } catch {
            result = .failure(error)
        }
        try? await fixture.cleanUp()
        await client.close()
        await admin.close()
        return try result.get()
    }

    /// A fresh queue name, deleted after the test.
    func queue(_ name: String = "q") -> String {
        let queue = TestServers.uniqueName("client-\(name)")
        usedQueues.withLock { $0.append(queue) }
        return queue
    }

    func cleanUp() async throws {
        for queue in usedQueues.current {
            _ = try? await admin.deleteQueue(queue)
            _ = try? await admin.deleteQueue(queue + ".dlq")
        }
        try await RedisTestKeys.delete(prefix: prefix, on: client.redis)
    }

    /// The envelope of a delivered task message, read as a worker reads it.
    static func envelope(of delivery: AMQPDelivery) throws -> TaskEnvelope {
        try TaskEnvelope(
            celeryHeaders: delivery.properties.headers.jsonFields, body: delivery.body,
            contentType: delivery.properties.contentType, contentEncoding: delivery.properties.contentEncoding,
            replyTo: delivery.properties.replyTo, priority: delivery.properties.priority)
    }

    /// Claims the task of `envelope` as worker `test-worker`; the claim must say run.
    func claim(_ envelope: TaskEnvelope, queue: String) async throws -> Int64 {
        let outcome = try await store.claim(
            envelope.id, worker: "test-worker", name: envelope.task, queue: queue, lease: .seconds(30),
            replyTo: envelope.replyTo)
        guard case .run(let token, _) = outcome else { throw TestFailure("claim of \(envelope.id): \(outcome)") }
        return token
    }

    /// A minimal worker: consumes `count` messages of `queue`, and for each claims, runs `handler`, records the
    /// outcome (notifying the envelope's `reply_to`) and acks. Returns the envelopes in delivery order.
    @discardableResult
    func serve(
        _ queue: String, count: Int, handler: @Sendable (TaskEnvelope) throws -> TaskOutcome
    ) async throws -> [TaskEnvelope] {
        let consumer = try await admin.consume(queue: queue, prefetch: 200)
        var served: [TaskEnvelope] = []
        for try await delivery in consumer {
            let envelope = try Self.envelope(of: delivery)
            let token = try await claim(envelope, queue: queue)
            let outcome = try handler(envelope)
            let recorded = try await store.finish(
                envelope.id, token: token, outcome: outcome, replyTo: envelope.replyTo)
            #expect(recorded == .recorded)
            _ = delivery.ack()
            served.append(envelope)
            if served.count == count { break }
        }
        await consumer.cancel()
        return served
    }

    /// The next `count` deliveries of `queue`, unacknowledged until the consumer is cancelled.
    func take(_ queue: String, count: Int) async throws -> (consumer: AMQPConsumer, deliveries: [AMQPDelivery]) {
        let consumer = try await admin.consume(queue: queue, prefetch: UInt16(count))
        var deliveries: [AMQPDelivery] = []
        for try await delivery in consumer {
            deliveries.append(delivery)
            if deliveries.count == count { break }
        }
        return (consumer, deliveries)
    }

    /// `PUBSUB NUMSUB channel`.
    func subscriberCount(_ channel: String) async throws -> Int {
        let reply = try await client.redis.send(RedisCommand("PUBSUB", "NUMSUB", channel))
        guard let parts = reply.array, parts.count == 2, let count = parts[1].int else {
            throw TestFailure("unexpected NUMSUB reply \(reply)")
        }
        return count
    }

    /// Waits (bounded) until `channel` has `count` subscribers.
    func awaitSubscribers(_ channel: String, count: Int) async throws {
        for _ in 0..<500 {
            if try await subscriberCount(channel) == count { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("\(channel) never had \(count) subscriber(s)")
    }
}
