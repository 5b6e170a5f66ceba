import ConveyorAMQP
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

@Suite("ConveyorClient: submit and get")
struct ClientSubmitTests {
    @Test("submit → a worker runs it → get returns the output")
    func submitThenGet() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue("images")
            let ref = try await fixture.client.submit(
                Resize.self, .init(url: "https://x/cat.png", width: 256), options: .init(queue: queue))
            try await fixture.serve(queue, count: 1) { envelope in
                let input = try Resize.decodeInput(from: envelope)
                return .success(.string("\(input.url)@\(input.width)"))
            }
            let output: String = try await ref.get(timeout: .seconds(10))
            #expect(output == "https://x/cat.png@256")
        }
    }

    @Test("a failed task raises TaskError with its type and message")
    func failureRaisesTaskError() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            try await fixture.serve(queue, count: 1) { _ in
                .failure(TaskFailure(type: "ImageError", message: "width must be positive"))
            }
            let error = await #expect(throws: TaskError.self) { try await ref.get(timeout: .seconds(10)) }
            #expect(error?.type == "ImageError")
            #expect(error?.message == "width must be positive")
            #expect(error?.id == ref.id)
        }
    }

    @Test("a revoked task raises the revoked error")
    func revokedRaises() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            try await fixture.serve(queue, count: 1) { _ in .revoked(reason: "terminated") }
            await #expect(throws: ConveyorError.revoked(id: ref.id, reason: "terminated")) {
                try await ref.get(timeout: .seconds(10))
            }
        }
    }

    @Test("get on a task nobody runs times out with a clear error")
    func getTimesOut() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            let error = await #expect(throws: ConveyorError.self) { try await ref.get(timeout: .milliseconds(300)) }
            #expect(error == .timeout(id: ref.id, after: .milliseconds(300)))
            #expect(error.map { "\($0)" }?.contains(ref.id) == true)
        }
    }

    @Test("status goes PENDING → STARTED → SUCCESS")
    func statusTransitions() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(Add.self, .init(a: 2, b: 3), options: .init(queue: queue))
            #expect(try await ref.status().state == .pending)
            #expect(try await fixture.client.result(ref.id) == nil)

            let (consumer, deliveries) = try await fixture.take(queue, count: 1)
            let envelope = try ClientFixture.envelope(of: deliveries[0])
            let token = try await fixture.claim(envelope, queue: queue)
            let started = try await ref.status()
            #expect(started.state == .started)
            #expect(started.name == "examples.add")
            #expect(started.queue == queue)

            let input = try Add.decodeInput(from: envelope)
            _ = try await fixture.store.finish(
                envelope.id, token: token, outcome: .success(.int(Int64(input.a + input.b))),
                replyTo: envelope.replyTo)
            _ = deliveries[0].ack()
            await consumer.cancel()
            #expect(try await ref.status().state == .success)
            #expect(try await fixture.client.result(ref.id)?.result == .int(5))
            #expect(try await ref.get(timeout: .seconds(5)) == 5)
        }
    }

    @Test("submit by name with raw JSON args and kwargs")
    func rawSubmit() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let positional = try await fixture.client.submit(
                name: "examples.add", args: [2, 3], options: .init(queue: queue))
            let named = try await fixture.client.submit(
                name: "examples.add", args: [10], kwargs: ["b": 20], options: .init(queue: queue))
            try await fixture.serve(queue, count: 2) { envelope in
                let input = try Add.decodeInput(from: envelope)
                return .success(.int(Int64(input.a + input.b)))
            }
            #expect(try await positional.get(timeout: .seconds(10)) == .int(5))
            #expect(try await named.get(timeout: .seconds(10)) == .int(30))
        }
    }

    @Test("submitMany publishes in input order and returns refs in input order")
    func submitManyOrder() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let inputs = (0..<50).map { Add.Input(a: $0, b: 1) }
            let refs = try await fixture.client.submitMany(Add.self, inputs, options: .init(queue: queue))
            #expect(refs.count == 50)
            let served = try await fixture.serve(queue, count: 50) { envelope in
                let input = try Add.decodeInput(from: envelope)
                return .success(.int(Int64(input.a + input.b)))
            }
            #expect(served.map(\.id) == refs.map(\.id))
            #expect(try served.map { try Add.decodeInput(from: $0) } == inputs)
            for (index, ref) in refs.enumerated() {
                #expect(try await ref.get(timeout: .seconds(10)) == index + 1)
            }
        }
    }

    @Test("the message on the wire is Celery protocol v2")
    func celeryShapedMessage() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let ref = try await fixture.client.submit(
                Resize.self, .init(url: "u", width: 256),
                options: .init(queue: queue, priority: 7, timeLimit: .init(hard: 30, soft: 20)))
            let (consumer, deliveries) = try await fixture.take(queue, count: 1)
            let delivery = deliveries[0]
            _ = delivery.ack()
            await consumer.cancel()

            let properties = delivery.properties
            #expect(properties.contentType == "application/json")
            #expect(properties.contentEncoding == "utf-8")
            #expect(properties.correlationId == ref.id)
            #expect(properties.replyTo == fixture.client.clientID)
            #expect(properties.deliveryMode == .persistent)
            #expect(properties.priority == 7)
            #expect(delivery.exchange == "")
            #expect(delivery.routingKey == queue)

            let headers = properties.headers
            #expect(headers["task"] == .string("images.resize"))
            #expect(headers["id"] == .string(ref.id))
            #expect(headers["root_id"] == .string(ref.id))
            #expect(headers["lang"] == .string("swift"))
            #expect(headers["retries"] == .int(0))
            #expect(headers["argsrepr"] == .string("[]"))
            #expect(headers["kwargsrepr"]?.stringValue?.contains("256") == true)
            #expect(headers["origin"]?.stringValue?.contains("@") == true)
            #expect(headers["timelimit"] == .array([.int(30), .int(20)]))
            #expect(headers["eta"] == .void)
            #expect(headers["ignore_result"] == .bool(false))

            let body = try JSONValue(json: delivery.body)
            #expect(
                body
                    == .array([
                        [], ["url": "u", "width": 256],
                        ["callbacks": nil, "errbacks": nil, "chain": nil, "chord": nil],
                    ]))
        }
    }

    @Test("countdown puts the task in the delay set, due at the eta its message carries, and publishes nothing yet")
    func countdownSetsETA() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            let before = Date()
            let ref = try await fixture.client.submit(
                Add.self, .init(a: 1, b: 1), options: .init(queue: queue, countdown: 60))
            #expect(try await fixture.admin.queueInfo(queue)?.messageCount == 0)
            let store = fixture.client.store
            let due = try #require(try await store.scheduledTime(ref.id))
            let stored = try await fixture.client.redis.send(RedisCommand("HGET", store.keys.delayedMessages, ref.id))
            let message = try DelayedMessage(json: try #require(stored.bytes))
            #expect(message.routingKey == queue)
            let eta = try #require(try message.envelope().eta)
            #expect(eta.timeIntervalSince(before) > 55 && eta.timeIntervalSince(before) < 65)
            #expect(due == MillisecondClock.milliseconds(eta))
        }
    }

    @Test("options without a queue use the client's configured default queue")
    func defaultQueueFromConfiguration() async throws {
        try await ClientFixture.with("default-queue") { fixture in
            let queue = fixture.queue("default")
            var configuration = ClientFixture.configuration(prefix: fixture.prefix)
            configuration.defaultQueue = queue
            let client = try await ConveyorClient.connect(configuration)
            do {
                _ = try await client.submit(Add.self, .init(a: 1, b: 1))
                _ = try await client.submit(name: "examples.add", kwargs: ["a": 1, "b": 2])
                #expect(try await fixture.admin.queueInfo(queue)?.messageCount == 2)
            } catch {
                await client.close()
                throw error
            }
            await client.close()
        }
    }
}
