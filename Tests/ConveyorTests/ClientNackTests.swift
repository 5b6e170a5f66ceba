import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

@Suite("ConveyorClient: messages the broker nacks are published again")
struct ClientNackTests {
    /// A queue that holds one message and nacks the next (`x-overflow: reject-publish`), with one message in it.
    static func fullQueue(_ fixture: ClientFixture) async throws -> String {
        let queue = fixture.queue("nack")
        var spec = AMQPQueue(queue)
        spec.maxLength = 1
        spec.overflow = .rejectPublish
        try await fixture.admin.declare(spec)
        try await fixture.admin.publish(AMQPMessage("filler"), routingKey: queue)
        return queue
    }

    @Test("a submit the broker nacks while the queue is full succeeds once it has room again, with one message")
    func republishedWhenRoomReturns() async throws {
        try await ClientFixture.with("nack-retry") { f in
            let queue = try await Self.fullQueue(f)
            async let submitted = f.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            // The first attempt is nacked at once; the room appears before the retries run out (50, 200, 800, 2,000 ms).
            try await Task.sleep(for: .milliseconds(120))
            #expect(try await f.admin.purgeQueue(queue) == 1, "only the filler was in the queue")
            let ref = try await submitted
            let consumer = try await f.admin.consume(queue: queue, prefetch: 1)
            var iterator = consumer.makeAsyncIterator()
            let delivery = try #require(try await iterator.next())
            #expect(try ClientFixture.envelope(of: delivery).id == ref.id)
            _ = delivery.ack()
            await consumer.cancel()
            #expect(try await f.admin.queueInfo(queue)?.messageCount == 0)
        }
    }

    @Test("a submit the broker keeps nacking fails with nacked after its retries; a batch lists each message")
    func failsWhenNackedThroughout() async throws {
        try await ClientFixture.with("nack-fail") { f in
            let queue = try await Self.fullQueue(f)
            let started = ContinuousClock.now
            await #expect(throws: AMQPError.nacked) {
                try await f.client.submit(Add.self, .init(a: 1, b: 2), options: .init(queue: queue))
            }
            // Four more attempts, 50, 200, 800 and 2,000 ms apart, before giving up.
            #expect(ContinuousClock.now - started >= .milliseconds(3_050))
            do {
                _ = try await f.client.submitMany(
                    Add.self, [.init(a: 1, b: 2), .init(a: 3, b: 4)], options: .init(queue: queue))
                Issue.record("a batch into a full queue was confirmed")
            } catch AMQPError.batchFailed(let failures) {
                #expect(failures.map(\.index) == [0, 1])
                #expect(failures.allSatisfy { $0.error == .nacked })
            }
            #expect(try await f.admin.queueInfo(queue)?.messageCount == 1, "only the filler")
        }
    }
}
