import ConveyorAMQP
import ConveyorIO
import ConveyorTestSupport
import Foundation
import Testing

/// Which message ids were confirmed to a publisher and which were delivered, for at-least-once checks.
final class DeliveryLedger: Sendable {
    private let confirmed: LockedValue<[Bool]>
    private let received: LockedValue<(seen: [Bool], distinct: Int, total: Int)>

    init(count: Int) {
        confirmed = LockedValue(Array(repeating: false, count: count))
        received = LockedValue((Array(repeating: false, count: count), 0, 0))
    }

    func confirm(_ ids: some Sequence<Int>) {
        confirmed.withLock { for id in ids { $0[id] = true } }
    }

    /// Records a delivered body (the id as decimal text); false if it is not an id of this run.
    @discardableResult
    func receive(_ body: [UInt8]) -> Bool {
        guard let id = Int(String(decoding: body, as: UTF8.self)) else { return false }
        return received.withLock { state in
            guard state.seen.indices.contains(id) else { return false }
            state.total += 1
            if !state.seen[id] {
                state.seen[id] = true
                state.distinct += 1
            }
            return true
        }
    }

    func isReceived(_ id: Int) -> Bool { received.withLock { $0.seen[id] } }

    var distinctReceived: Int { received.withLock { $0.distinct } }
    var totalReceived: Int { received.withLock { $0.total } }
    var confirmedCount: Int { confirmed.withLock { $0.count { $0 } } }

    /// Confirmed ids never delivered.
    var lost: [Int] {
        let seen = received.withLock { $0.seen }
        return confirmed.withLock { confirmed in confirmed.indices.filter { confirmed[$0] && !seen[$0] } }
    }
}

/// Consumes `consumer` into `ledger`, acking everything, until the task is cancelled.
func drain(_ consumer: AMQPConsumer, into ledger: DeliveryLedger) async throws {
    for try await delivery in consumer {
        ledger.receive(delivery.body)
        delivery.ack()
    }
}

/// Publishes ids `range` in batches, recording confirmed ones, retrying a failed batch until `deadline`.
func publish(
    _ range: Range<Int>, batch size: Int, on connection: AMQPConnection, queue: String, ledger: DeliveryLedger,
    pause: Duration? = nil
) async throws {
    var start = range.lowerBound
    while start < range.upperBound {
        let ids = start..<min(start + size, range.upperBound)
        let batch = ids.map { AMQPOutgoing(AMQPMessage(body: Array(String($0).utf8)), routingKey: queue) }
        try await connection.publish(batch: batch)
        ledger.confirm(ids)
        start = ids.upperBound
        if let pause { try await Task.sleep(for: pause) }
    }
}

@Suite("AMQP load")
struct LoadTests {
    @Test("100,000 confirmed messages from 8 publishers reach 2 consumers, none lost")
    func hundredThousandMessages() async throws {
        let total = 100_000
        let publishers = 8
        let name = TestServers.uniqueName("load")
        let publisherConnection = try await AMQPTest.connect("\(name)-pub")
        let consumerConnection = try await AMQPTest.connect("\(name)-con")
        let queue = TestServers.uniqueName("q-load")
        try await publisherConnection.declare(AMQPQueue(queue))
        let ledger = DeliveryLedger(count: total)

        let consumers = [
            try await consumerConnection.consume(queue: queue, prefetch: 300),
            try await consumerConnection.consume(queue: queue, prefetch: 300),
        ]
        let consuming = consumers.map { consumer in Task { try await drain(consumer, into: ledger) } }

        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let share = total / publishers
            for index in 0..<publishers {
                group.addTask {
                    try await publish(
                        (index * share)..<((index + 1) * share), batch: 250, on: publisherConnection, queue: queue,
                        ledger: ledger)
                }
            }
            try await group.waitForAll()
        }
        #expect(ledger.confirmedCount == total)
        try await AMQPTest.eventually(timeout: .seconds(30), "every message delivered") {
            ledger.distinctReceived == total
        }
        let elapsed = ContinuousClock.now - started
        for task in consuming { task.cancel() }
        for consumer in consumers { await consumer.cancel() }
        #expect(ledger.lost.isEmpty)
        #expect(ledger.totalReceived == total, "no redelivery expected without failures")
        print("load: \(total) messages published and consumed in \(elapsed)")

        try await AMQPTest.eventually("the queue is empty") {
            try await publisherConnection.queueInfo(queue)?.messageCount == 0
        }
        try await publisherConnection.deleteQueue(queue)
        await publisherConnection.close()
        await consumerConnection.close()
    }
}
