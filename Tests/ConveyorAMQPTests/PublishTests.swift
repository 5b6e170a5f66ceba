import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@Suite("AMQP publishing")
struct PublishTests {
    @Test func publishIsConfirmedAndDelivered() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-one"))
        let queue = TestServers.uniqueName("q-pub-one")
        try await connection.declare(AMQPQueue(queue))
        try await connection.publish(AMQPMessage("hello"), routingKey: queue)
        try await connection.publish(AMQPMessage("world"), routingKey: queue)
        let info = try #require(try await connection.queueInfo(queue))
        #expect(info.messageCount == 2)

        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 2)
        #expect(got.map(\.bodyString) == ["hello", "world"])
        #expect(got.allSatisfy { $0.routingKey == queue && $0.exchange == "" && !$0.redelivered })
        #expect(got.first?.properties.deliveryMode == .persistent)
        for delivery in got { #expect(delivery.ack()) }
        await consumer.cancel()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func batchPublishConfirmsEveryMessageInOrder() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-batch"))
        let queue = TestServers.uniqueName("q-pub-batch")
        try await connection.declare(AMQPQueue(queue))
        let batch = (0..<500).map { AMQPOutgoing(AMQPMessage("m\($0)"), routingKey: queue) }
        try await connection.publish(batch: batch)
        try await connection.publish(batch: [])
        #expect(try await connection.queueInfo(queue)?.messageCount == 500)

        let consumer = try await connection.consume(queue: queue, prefetch: 100)
        var bodies: [String] = []
        for try await delivery in consumer {
            bodies.append(delivery.bodyString)
            delivery.ack()
            if bodies.count == 500 { break }
        }
        #expect(bodies == (0..<500).map { "m\($0)" })
        await consumer.cancel()
        try await AMQPTest.eventually("acks reach the broker") {
            try await connection.queueInfo(queue)?.messageCount == 0
        }
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func unroutableMandatoryMessageIsReturned() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-return"))
        let queue = TestServers.uniqueName("q-pub-return")
        try await connection.declare(AMQPQueue(queue))
        let nowhere = TestServers.uniqueName("no-such-queue")

        await #expect(throws: AMQPError.returned(replyCode: 312, replyText: "NO_ROUTE")) {
            try await connection.publish(AMQPMessage("lost"), routingKey: nowhere, mandatory: true)
        }
        // Not mandatory: the broker drops it silently and confirms it.
        try await connection.publish(AMQPMessage("dropped"), routingKey: nowhere)

        // In a batch, only the unroutable mandatory messages fail, by index.
        let batch = [
            AMQPOutgoing(AMQPMessage("a"), routingKey: queue, mandatory: true),
            AMQPOutgoing(AMQPMessage("b"), routingKey: nowhere, mandatory: true),
            AMQPOutgoing(AMQPMessage("c"), routingKey: queue, mandatory: true),
            AMQPOutgoing(
                AMQPMessage("d", properties: AMQPProperties(headers: ["k": "v"])), routingKey: nowhere,
                mandatory: true),
        ]
        do {
            try await connection.publish(batch: batch)
            Issue.record("expected a batch failure")
        } catch let AMQPError.batchFailed(failures) {
            #expect(failures.map(\.index) == [1, 3])
            #expect(failures.allSatisfy { $0.error == .returned(replyCode: 312, replyText: "NO_ROUTE") })
        }
        #expect(try await connection.queueInfo(queue)?.messageCount == 2)
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func overflowingRejectPublishQueueNacks() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-nack"))
        var spec = AMQPQueue(TestServers.uniqueName("q-pub-nack"))
        spec.maxLength = 2
        spec.overflow = .rejectPublish
        try await connection.declare(spec)
        try await connection.publish(AMQPMessage("1"), routingKey: spec.name)
        try await connection.publish(AMQPMessage("2"), routingKey: spec.name)
        await #expect(throws: AMQPError.nacked) {
            try await connection.publish(AMQPMessage("3"), routingKey: spec.name)
        }
        do {
            try await connection.publish(batch: [
                AMQPOutgoing(AMQPMessage("4"), routingKey: spec.name),
                AMQPOutgoing(AMQPMessage("5"), routingKey: spec.name),
            ])
            Issue.record("expected a batch failure")
        } catch let AMQPError.batchFailed(failures) {
            #expect(
                failures == [AMQPBatchFailure(index: 0, error: .nacked), AMQPBatchFailure(index: 1, error: .nacked)])
        }
        #expect(try await connection.queueInfo(spec.name)?.messageCount == 2)
        try await connection.deleteQueue(spec.name)
        await connection.close()
    }

    @Test func publishingToAMissingExchangeFailsThatPublishOnly() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-noexchange"))
        let queue = TestServers.uniqueName("q-pub-noexchange")
        try await connection.declare(AMQPQueue(queue))
        let missing = TestServers.uniqueName("no-such-exchange")
        do {
            try await connection.publish(AMQPMessage("x"), exchange: missing, routingKey: queue)
            Issue.record("expected notFound")
        } catch let AMQPError.notFound(text) {
            #expect(text.contains(missing))
        }
        // The publish channel was reopened: publishing works on the same connection.
        try await connection.publish(AMQPMessage("ok"), routingKey: queue)
        #expect(try await connection.queueInfo(queue)?.messageCount == 1)
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func publishAfterCloseFails() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("pub-closed"))
        await connection.close()
        await connection.close()
        #expect(connection.state == .closed)
        await #expect(throws: AMQPError.closed) {
            try await connection.publish(AMQPMessage("x"), routingKey: "anything")
        }
        await #expect(throws: AMQPError.closed) { try await connection.queueInfo("anything") }
    }
}
