import ConveyorTestSupport
import Foundation
import Testing

/// The private RabbitMQ that chaos tests use: it starts, keeps its definitions across a restart, reports failures
/// with the tool's output, and goes away. (Starting a node takes about 8 s: one test is enough.)
@Suite("Private RabbitMQ node")
struct PrivateRabbitMQSmokeTests {
    @Test("restart keeps definitions; shutdown stops the node and removes its folder")
    func lifecycle() async throws {
        let rabbit = try await PrivateRabbitMQ.start()
        do {
            #expect(rabbit.url == "amqp://guest:guest@127.0.0.1:\(rabbit.port)/")
            #expect(rabbit.nodeName.hasSuffix("@localhost"))
            #expect(PrivatePorts.isListening(rabbit.port))

            // A vhost lives in the node's database, like durable queues: it must survive the restart.
            let vhost = TestServers.uniqueName("smoke")
            _ = try await rabbit.rabbitmqctl(["add_vhost", vhost])
            try await rabbit.restart()
            #expect(PrivatePorts.isListening(rabbit.port))
            #expect(
                try await rabbit.rabbitmqctl(["list_vhosts", "-q"]).split(separator: "\n").contains { $0 == vhost })

            #expect(try await rabbit.closeConnections(named: TestServers.uniqueName("nobody")) == 0)
            let error = await #expect(throws: PrivateServerError.self) {
                try await rabbit.rabbitmqctl(["no_such_command"])
            }
            #expect(error?.output.isEmpty == false)
        } catch {
            await rabbit.shutdown()
            throw error
        }
        await rabbit.shutdown()
        #expect(!PrivatePorts.isListening(rabbit.port))
        #expect(!FileManager.default.fileExists(atPath: rabbit.folder.path))
    }
}
