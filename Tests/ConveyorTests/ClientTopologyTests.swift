import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

@Suite("ConveyorClient: queue topology")
struct ClientTopologyTests {
    @Test("a missing queue is declared as a durable quorum queue with a delivery limit and a dead-letter queue")
    func declaresQuorumQueue() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            _ = try await fixture.client.submit(Add.self, .init(a: 1, b: 1), options: .init(queue: queue))
            #expect(try await fixture.admin.queueInfo(queue)?.messageCount == 1)
            // Redeclaring with Conveyor's arguments is accepted only if that is what exists.
            var expected = AMQPQueue(queue)
            expected.queueType = .quorum
            expected.deliveryLimit = 10
            expected.arguments["x-dead-letter-exchange"] = ""
            expected.arguments["x-dead-letter-routing-key"] = .string(queue + ".dlq")
            try await fixture.admin.declare(expected)
            #expect(try await fixture.admin.queueInfo(queue + ".dlq") != nil)
            await #expect(throws: AMQPError.self) { try await fixture.admin.declare(AMQPQueue(queue)) }
        }
    }

    @Test("with queueType classic, a missing queue and its dead-letter queue are declared classic, no delivery limit")
    func declaresClassicQueue() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue("classic-type")
            let topology = TaskQueueTopology(queueType: .classic)
            try await topology.declare(queue, on: fixture.admin)
            var expected = AMQPQueue(queue, durable: true)
            expected.queueType = .classic
            expected.arguments["x-dead-letter-exchange"] = ""
            expected.arguments["x-dead-letter-routing-key"] = .string(queue + ".dlq")
            // Equivalent declarations pass; a quorum one is refused, so the queue really is classic.
            try await fixture.admin.declare(expected)
            var dead = AMQPQueue(queue + ".dlq", durable: true)
            dead.queueType = .classic
            try await fixture.admin.declare(dead)
            await #expect(throws: ConveyorError.self) {
                try await TaskQueueTopology().declare(queue, on: fixture.client.broker)
            }
            // A default (quorum) client finds the classic queue and uses it as it is.
            let ref = try await fixture.client.submit(Add.self, .init(a: 2, b: 5), options: .init(queue: queue))
            try await fixture.serve(queue, count: 1) { envelope in
                let input = try Add.decodeInput(from: envelope)
                return .success(.int(Int64(input.a + input.b)))
            }
            #expect(try await ref.get(timeout: .seconds(10)) == 7)
        }
    }

    @Test("an existing classic queue (as Celery declares it) is used as it is")
    func existingClassicQueue() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue("celery-classic")
            try await fixture.admin.declare(AMQPQueue(queue, durable: true))
            let ref = try await fixture.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            #expect(try await fixture.admin.queueInfo(queue)?.messageCount == 1)
            // Still classic: the classic declaration is still equivalent.
            try await fixture.admin.declare(AMQPQueue(queue, durable: true))
            try await fixture.serve(queue, count: 1) { envelope in
                let input = try Add.decodeInput(from: envelope)
                return .success(.int(Int64(input.a + input.b)))
            }
            #expect(try await ref.get(timeout: .seconds(10)) == 3)
        }
    }

    @Test("declaring over a queue with other arguments is a clear error naming the queue and both values")
    func mismatchIsClearError() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue("mismatch")
            try await fixture.admin.declare(AMQPQueue(queue, durable: true))
            let error = await #expect(throws: ConveyorError.self) {
                try await fixture.client.configuration.topology.declare(queue, on: fixture.client.broker)
            }
            guard case .queueMismatch(let name, let text)? = error else {
                Issue.record("expected queueMismatch, got \(String(describing: error))")
                return
            }
            #expect(name == queue)
            #expect(text.contains(queue))
            // RabbitMQ names the first argument that differs, with the value it received and the one it has.
            #expect(text.contains("inequivalent arg 'x-"))
            #expect(error.map { "\($0)" }?.contains(queue) == true)

            // A second client configured with another delivery limit finds the first one's queue and uses it.
            let other = fixture.queue("limit")
            try await TaskQueueTopology(deliveryLimit: 3).ensure(other, on: fixture.admin)
            _ = try await fixture.client.submit(Add.self, .init(a: 1, b: 1), options: .init(queue: other))
            #expect(try await fixture.admin.queueInfo(other)?.messageCount == 1)
            await #expect(throws: ConveyorError.self) {
                try await TaskQueueTopology(deliveryLimit: 7).declare(other, on: fixture.client.broker)
            }
            // The connection keeps working after the refused declaration.
            _ = try await fixture.client.submit(Add.self, .init(a: 2, b: 2), options: .init(queue: other))
            #expect(try await fixture.admin.queueInfo(other)?.messageCount == 2)
        }
    }

    @Test("a queue deleted after the first submit makes the next submit fail, never a silent drop")
    func deletedQueueIsAnError() async throws {
        try await ClientFixture.with { fixture in
            let queue = fixture.queue()
            _ = try await fixture.client.submit(Add.self, .init(a: 1, b: 1), options: .init(queue: queue))
            try await fixture.admin.deleteQueue(queue)
            await #expect(throws: AMQPError.self) {
                _ = try await fixture.client.submit(Add.self, .init(a: 1, b: 1), options: .init(queue: queue))
            }
        }
    }
}
