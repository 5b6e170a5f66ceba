import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@Suite("AMQP consuming")
struct ConsumeTests {
    private func fill(_ connection: AMQPConnection, _ queue: String, count: Int) async throws {
        try await connection.publish(
            batch: (0..<count).map { AMQPOutgoing(AMQPMessage("\($0)"), routingKey: queue) })
    }

    @Test func prefetchBoundsUnackedDeliveriesAndCanBeRaised() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("prefetch"))
        let queue = TestServers.uniqueName("q-prefetch")
        try await connection.declare(AMQPQueue(queue))
        try await fill(connection, queue, count: 30)

        let consumer = try await connection.consume(queue: queue, prefetch: 5)
        let first = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 5)
        #expect(first.map(\.bodyString) == ["0", "1", "2", "3", "4"])
        let sixth = try await AMQPTest.collect(consumer, for: .milliseconds(700))
        #expect(sixth.isEmpty, "prefetch 5 allows no sixth unacked delivery")

        try await consumer.setPrefetch(12)
        let second = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 7)
        #expect(second.count == 7)
        let more = try await AMQPTest.collect(consumer, for: .milliseconds(700))
        #expect(first.count + second.count + more.count <= 12 + 5)

        // Settling frees the window: everything else arrives once all is acked.
        for delivery in first + second + more { #expect(delivery.ack()) }
        var rest = first.count + second.count + more.count
        for try await delivery in consumer {
            delivery.ack()
            rest += 1
            if rest == 30 { break }
        }
        #expect(rest == 30)
        await consumer.cancel()
        try await AMQPTest.eventually("all acked") { try await connection.queueInfo(queue)?.messageCount == 0 }
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func outOfOrderAcksNackRequeueAndRejectToDeadLetterQueue() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("settle"))
        let dlx = TestServers.uniqueName("x-dlx")
        let dlq = TestServers.uniqueName("q-dlq")
        let queue = TestServers.uniqueName("q-settle")
        try await connection.declare(AMQPExchange(dlx, kind: .fanout, durable: false, autoDelete: false))
        try await connection.declare(AMQPQueue(dlq))
        try await connection.declare(AMQPBinding(queue: dlq, exchange: dlx))
        var spec = AMQPQueue(queue)
        spec.deadLetterExchange = dlx
        try await connection.declare(spec)
        try await fill(connection, queue, count: 10)

        let consumer = try await connection.consume(queue: queue, prefetch: 20)
        let deliveries = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 10)
        try #require(deliveries.count == 10)
        // Out of order: acks of 9, 7, 5, 3, 1 (0-based bodies 8, 6, ...), nack(requeue) "0", reject "9".
        for index in [8, 6, 4, 2, 1, 3, 5, 7] { #expect(deliveries[index].ack()) }
        #expect(deliveries[0].nack(requeue: true))
        #expect(deliveries[9].reject(requeue: false))
        // Settling twice is ignored by the connection's thread (the broker would close the channel for it).
        #expect(deliveries[8].ack())

        let redelivered = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        #expect(redelivered.map(\.bodyString) == ["0"])
        #expect(redelivered.first?.redelivered == true)
        #expect(redelivered.first?.ack() == true)

        try await AMQPTest.eventually("the rejected message reaches the DLQ") {
            try await connection.queueInfo(dlq)?.messageCount == 1
        }
        try await AMQPTest.eventually("everything else is settled") {
            try await connection.queueInfo(queue)?.messageCount == 0
        }
        let deadConsumer = try await connection.consume(queue: dlq)
        let dead = try await AMQPTest.collect(deadConsumer, for: .seconds(10), limit: 1)
        #expect(dead.map(\.bodyString) == ["9"])
        let death = dead.first?.properties.headers["x-death"]?.arrayValue?.first?.tableValue
        #expect(death?["reason"] == "rejected")
        #expect(death?["queue"] == .string(queue))
        dead.first?.ack()
        await deadConsumer.cancel()
        await consumer.cancel()

        // Nothing left unacked anywhere: no further delivery comes back after a while.
        let again = try await connection.consume(queue: queue)
        #expect(try await AMQPTest.collect(again, for: .milliseconds(500)).isEmpty)
        await again.cancel()
        try await connection.deleteQueue(queue)
        try await connection.deleteQueue(dlq)
        try await connection.deleteExchange(dlx)
        await connection.close()
    }

    @Test func cancelEndsTheSequenceAndUnackedMessagesReturn() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("cancel"))
        let queue = TestServers.uniqueName("q-cancel")
        try await connection.declare(AMQPQueue(queue))
        try await fill(connection, queue, count: 3)
        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 3)
        #expect(got.count == 3)
        got[0].ack()
        await consumer.cancel()
        // The sequence ends after cancel.
        var iterator = consumer.makeAsyncIterator()
        #expect(try await iterator.next() == nil)
        // Deliveries received before the cancel can still be settled; nack one back, keep one unacked.
        #expect(got[1].nack(requeue: true))
        try await AMQPTest.eventually("the nacked message is back") {
            try await connection.queueInfo(queue)?.messageCount == 1
        }
        try await connection.purgeQueue(queue)
        try await connection.deleteQueue(queue)
        await connection.close()
        // After close, settling is a no-op that says so.
        #expect(!got[2].ack())
    }

    @Test func brokerCancelAfterQueueDeletionResubscribes() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("broker-cancel"))
        let other = try await AMQPTest.connect(TestServers.uniqueName("broker-cancel-admin"))
        let queue = TestServers.uniqueName("q-broker-cancel")
        try await connection.declare(AMQPQueue(queue))
        let consumer = try await connection.consume(queue: queue, prefetch: 10)
        try await other.publish(AMQPMessage("before"), routingKey: queue)
        let before = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        #expect(before.map(\.bodyString) == ["before"])
        before.first?.ack()

        // Delete the queue behind the consumer's back: the broker cancels it; the client re-declares and resubscribes.
        try await other.deleteQueue(queue)
        try await AMQPTest.eventually("the queue is back with its consumer") {
            try await other.queueInfo(queue)?.consumerCount == 1
        }
        try await other.publish(AMQPMessage("after"), routingKey: queue)
        let after = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        #expect(after.map(\.bodyString) == ["after"])
        after.first?.ack()

        await consumer.cancel()
        try await connection.deleteQueue(queue)
        await other.close()
        await connection.close()
    }

    @Test func brokerCancelOfAnUndeclaredQueueEndsTheSequenceWithAnError() async throws {
        let admin = try await AMQPTest.connect(TestServers.uniqueName("cancel-undeclared-admin"))
        let connection = try await AMQPTest.connect(TestServers.uniqueName("cancel-undeclared"))
        let queue = TestServers.uniqueName("q-cancel-undeclared")
        try await admin.declare(AMQPQueue(queue))
        let consumer = try await connection.consume(queue: queue)
        try await admin.deleteQueue(queue)
        do {
            for try await _ in consumer {}
            Issue.record("expected the sequence to throw")
        } catch let AMQPError.consumerCancelled(cancelledQueue, _) {
            #expect(cancelledQueue == queue)
        }
        // The connection itself is fine.
        #expect(try await connection.queueInfo(queue) == nil)
        await admin.close()
        await connection.close()
    }
}
