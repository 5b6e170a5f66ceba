import ConveyorAMQP
import ConveyorIO
import ConveyorTestSupport
import Foundation
import Testing

@Suite("AMQP reconnect details")
struct ReconnectTests {
    @Test func deliveriesFromAnOldConnectionAreNeverAckedOnTheNewOne() async throws {
        let name = TestServers.uniqueName("old-tags")
        let connection = try await AMQPTest.connect(name)
        let queue = TestServers.uniqueName("q-old-tags")
        try await connection.declare(AMQPQueue(queue))
        try await connection.publish(AMQPMessage("only"), routingKey: queue)
        let consumer = try await connection.consume(queue: queue)
        let first = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        try #require(first.count == 1)
        #expect(!first[0].redelivered)

        #expect(try await AMQPTest.closeConnections(named: name) == 1)
        // The broker requeues the unacked message; the resubscribed consumer gets it again.
        let again = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        try #require(again.count == 1)
        #expect(again[0].bodyString == "only")
        #expect(again[0].redelivered)
        // Delivery tag 1 exists on the new channel too; the old delivery must not ack it.
        #expect(again[0].deliveryTag == first[0].deliveryTag)
        #expect(!first[0].ack())
        #expect(try await connection.queueInfo(queue)?.messageCount == 0)
        #expect(again[0].ack())
        await consumer.cancel()
        try await AMQPTest.eventually("acked on the new connection") {
            try await connection.queueInfo(queue)?.messageCount == 0
        }
        let recheck = try await connection.consume(queue: queue)
        #expect(try await AMQPTest.collect(recheck, for: .milliseconds(500)).isEmpty)
        await recheck.cancel()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func heartbeatsKeepAnIdleConnectionOpen() async throws {
        let policy = ReconnectPolicy(
            connectTimeout: .seconds(3), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
            heartbeat: .seconds(1), operationTimeout: .seconds(10))
        let connection = try await AMQPTest.connect(TestServers.uniqueName("heartbeat"), policy: policy)
        let queue = TestServers.uniqueName("q-heartbeat")
        try await connection.declare(AMQPQueue(queue, durable: false))
        try await connection.publish(AMQPMessage("hb"), routingKey: queue)
        let consumer = try await connection.consume(queue: queue)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        try #require(got.count == 1)
        // Idle for more than two heartbeat intervals: without heartbeats the broker would drop the connection,
        // and the delivery (from the old connection) could no longer be acked.
        try await Task.sleep(for: .milliseconds(3_500))
        #expect(connection.state == .connected)
        #expect(got[0].ack())
        await consumer.cancel()
        try await connection.deleteQueue(queue)
        await connection.close()
    }

    @Test func aFrozenBrokerIsNoticedThroughMissedHeartbeats() async throws {
        let rabbit = try await PrivateRabbitMQ.start()
        // The node's pid file, as scripts/servers writes it.
        let pidText = AMQPTest.readFile(rabbit.folder.appendingPathComponent("rabbitmq/rabbit.pid").path)
        let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        do {
            let policy = ReconnectPolicy(
                connectTimeout: .seconds(2), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
                heartbeat: .seconds(1), operationTimeout: .seconds(30))
            let connection = try await AMQPTest.connect(
                TestServers.uniqueName("frozen"), url: rabbit.url, policy: policy)
            let queue = TestServers.uniqueName("q-frozen")
            try await connection.declare(AMQPQueue(queue))
            // A stopped process keeps its sockets open: only missing heartbeats tell the client it is gone.
            kill(pid, SIGSTOP)
            do {
                try await AMQPTest.eventually(timeout: .seconds(8), "the client notices the frozen broker") {
                    if case .reconnecting = connection.state { return true }
                    return false
                }
            } catch {
                kill(pid, SIGCONT)
                throw error
            }
            kill(pid, SIGCONT)
            try await AMQPTest.within(.seconds(20), "publishing works again") {
                try await connection.publish(AMQPMessage("thawed"), routingKey: queue)
            }
            #expect(connection.state == .connected)
            try await connection.deleteQueue(queue)
            await connection.close()
        } catch {
            kill(pid, SIGCONT)
            await rabbit.shutdown()
            throw error
        }
        await rabbit.shutdown()
    }

    @Test func aMemoryAlarmBlocksPublishingUntilItClears() async throws {
        let rabbit = try await PrivateRabbitMQ.start()
        do {
            let connection = try await AMQPTest.connect(
                TestServers.uniqueName("blocked"), url: rabbit.url, policy: ChaosTests.policy)
            let queue = TestServers.uniqueName("q-blocked")
            try await connection.declare(AMQPQueue(queue))
            try await connection.publish(AMQPMessage("before"), routingKey: queue)
            #expect(connection.state == .connected)

            // A watermark of 0 raises the memory alarm at once: the broker blocks connections that publish.
            _ = try await rabbit.rabbitmqctl(["set_vm_memory_high_watermark", "0"])
            let blockedPublish = Task { try await connection.publish(AMQPMessage("during"), routingKey: queue) }
            try await AMQPTest.eventually("the broker blocks the connection") {
                if case .blocked(let reason) = connection.state { return reason.contains("memory") }
                return false
            }
            #expect(connection.isBlocked)
            _ = try await rabbit.rabbitmqctl(["set_vm_memory_high_watermark", "0.4"])
            try await AMQPTest.within(.seconds(10), "the publish completes once unblocked") {
                try await blockedPublish.value
            }
            try await AMQPTest.eventually("unblocked") { connection.state == .connected }
            #expect(try await connection.queueInfo(queue)?.messageCount == 2)
            try await connection.deleteQueue(queue)
            await connection.close()
        } catch {
            await rabbit.shutdown()
            throw error
        }
        await rabbit.shutdown()
    }

    @Test func publishesIssuedWhileDisconnectedWaitForTheReconnect() async throws {
        let rabbit = try await PrivateRabbitMQ.start()
        do {
            let connection = try await AMQPTest.connect(
                TestServers.uniqueName("offline"), url: rabbit.url, policy: ChaosTests.policy)
            let queue = TestServers.uniqueName("q-offline")
            try await connection.declare(AMQPQueue(queue))
            try await rabbit.stop()
            try await AMQPTest.eventually("the client notices the broker is gone") {
                if case .reconnecting = connection.state { return true }
                return false
            }
            // Issued while the broker is down: they wait, then complete once it is back.
            let publishing = Task {
                try await connection.publish(
                    batch: (0..<10).map { AMQPOutgoing(AMQPMessage("\($0)"), routingKey: queue) })
            }
            let shortDeadline = Task {
                try await connection.publish(AMQPMessage("late"), routingKey: queue, timeout: .milliseconds(300))
            }
            await #expect {
                try await shortDeadline.value
            } throws: { error in
                guard case .connectionLost(let reason) = error as? AMQPError else { return false }
                return reason.contains("deadline")
            }
            try await rabbit.startAgain()
            try await AMQPTest.within(.seconds(10), "the waiting batch is confirmed") { try await publishing.value }
            #expect(try await connection.queueInfo(queue)?.messageCount == 10)
            try await connection.deleteQueue(queue)
            await connection.close()
        } catch {
            await rabbit.shutdown()
            throw error
        }
        await rabbit.shutdown()
    }
}
