import ConveyorAMQP
import ConveyorIO
import ConveyorTestSupport
import Foundation
import Testing

/// Publishers and a consumer run while something breaks the connections; afterwards every confirmed message must
/// have been delivered at least once, and the same client objects must be working again within 5 s.
@Suite("AMQP chaos")
struct ChaosTests {
    /// A long operation timeout: publishes must wait out a broker restart rather than fail.
    static let policy = ReconnectPolicy(
        connectTimeout: .seconds(2), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
        heartbeat: .seconds(4), operationTimeout: .seconds(60))

    /// Runs the workload against `url`, calls `disturb` once some messages are confirmed, then checks recovery.
    private func runWorkload(
        url: String, disturb: @Sendable (_ connectionNames: [String]) async throws -> Void
    )
        async throws
    {
        let name = TestServers.uniqueName("chaos")
        let publisherName = "\(name)-pub"
        let consumerName = "\(name)-con"
        let publisher = try await AMQPTest.connect(publisherName, url: url, policy: Self.policy)
        let consumerConnection = try await AMQPTest.connect(consumerName, url: url, policy: Self.policy)
        let queue = TestServers.uniqueName("q-chaos")
        // The probe queue shows the consumer connection is back, without waiting for the main queue's backlog.
        let probeQueue = TestServers.uniqueName("q-chaos-probe")
        try await publisher.declare(AMQPQueue(queue))
        try await consumerConnection.declare(AMQPQueue(queue))
        try await consumerConnection.declare(AMQPQueue(probeQueue))
        let probeConsumer = try await consumerConnection.consume(queue: probeQueue)

        let capacity = 1_000_000
        let ledger = DeliveryLedger(count: capacity)
        let nextID = LockedValue(0)
        let stop = LockedValue(false)
        let consumer = try await consumerConnection.consume(queue: queue, prefetch: 100)
        let consuming = Task { try await drain(consumer, into: ledger) }

        // 4 publishers, paced so the run is still going when the disturbance hits.
        let publishing = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        while !stop.current {
                            let start = nextID.withLock { next in
                                defer { next += 50 }
                                return next
                            }
                            guard start + 50 <= capacity else { return }
                            try await publish(
                                start..<(start + 50), batch: 50, on: publisher, queue: queue, ledger: ledger)
                            try await Task.sleep(for: .milliseconds(20))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }

        // Generous timeouts here and below: under a sanitizer on a busy machine a fresh broker can be slow.
        try await AMQPTest.eventually(timeout: .seconds(60), "some messages confirmed") {
            ledger.confirmedCount >= 500
        }
        try await disturb([publisherName, consumerName])
        let disturbed = ContinuousClock.now

        // Back within 5 s: a new publish is confirmed, and a message published now reaches the consumer
        // connection (on its probe queue: the main queue may hold a backlog).
        try await AMQPTest.within(.seconds(5), "publisher back after the disturbance") {
            try await publisher.publish(AMQPMessage("probe"), routingKey: probeQueue)
        }
        let probe = try await AMQPTest.collect(
            probeConsumer, for: .seconds(5) - (ContinuousClock.now - disturbed), limit: 1)
        #expect(probe.map(\.bodyString) == ["probe"], "the consumer connection is back within 5 s")
        probe.first?.ack()
        let confirmedAtRecovery = ledger.confirmedCount
        #expect(publisher.state == .connected)
        #expect(consumerConnection.state == .connected)

        // Keep going a little on the recovered connections, then stop and check nothing confirmed was lost.
        try await AMQPTest.eventually(timeout: .seconds(60), "publishing continues") {
            ledger.confirmedCount >= confirmedAtRecovery + 500
        }
        stop.withLock { $0 = true }
        try await publishing.value
        try await AMQPTest.eventually(timeout: .seconds(60), "every confirmed message delivered") {
            ledger.lost.isEmpty
        }
        #expect(ledger.lost.isEmpty)
        #expect(ledger.distinctReceived >= ledger.confirmedCount)

        consuming.cancel()
        await consumer.cancel()
        await probeConsumer.cancel()
        try await publisher.deleteQueue(queue)
        try await publisher.deleteQueue(probeQueue)
        await publisher.close()
        await consumerConnection.close()
    }

    @Test("force-closed connections come back by themselves, losing nothing confirmed")
    func forceClosedConnections() async throws {
        try await runWorkload(url: TestServers.amqpURL) { names in
            var closed = 0
            for name in names { closed += try await AMQPTest.closeConnections(named: name) }
            #expect(closed == 2)
        }
    }

    @Test("a broker restart mid-run: clients come back by themselves, losing nothing confirmed")
    func brokerRestart() async throws {
        let rabbit = try await PrivateRabbitMQ.start()
        do {
            try await runWorkload(url: rabbit.url) { _ in try await rabbit.restart() }
        } catch {
            await rabbit.shutdown()
            throw error
        }
        await rabbit.shutdown()
    }
}
