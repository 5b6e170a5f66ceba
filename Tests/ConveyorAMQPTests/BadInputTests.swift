import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@Suite("AMQP bad input")
struct BadInputTests {
    /// A local port with nobody listening: bound to get a free number, then released.
    private func unusedPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestFailure("bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private var brokerURL: AMQPURL { get throws { try AMQPURL(string: TestServers.amqpURL) } }

    @Test func malformedURL() async throws {
        await #expect {
            _ = try await AMQPConnection.connect(url: "amqp://guest:guest@localhost:fivesixseventwo/")
        } throws: { error in
            guard case .invalidURL(let reason) = error as? AMQPError else { return false }
            return reason.contains("fivesixseventwo")
        }
    }

    @Test func wrongPassword() async throws {
        var url = try brokerURL
        url.password = "definitely-not-the-password"
        let configuration = AMQPConfiguration(
            urls: [url], policy: AMQPTest.fastPolicy, connectionName: TestServers.uniqueName("bad-password"))
        await #expect(throws: AMQPError.authenticationFailed(user: url.user)) {
            _ = try await AMQPConnection.connect(configuration)
        }
    }

    @Test func unknownVirtualHostIsRefused() async throws {
        var url = try brokerURL
        url.virtualHost = TestServers.uniqueName("no-such-vhost")
        let configuration = AMQPConfiguration(urls: [url], policy: AMQPTest.fastPolicy, connectionName: "bad-vhost")
        await #expect {
            _ = try await AMQPConnection.connect(configuration)
        } throws: { error in
            guard case .accessRefused(let text) = error as? AMQPError else { return false }
            return text.contains(url.virtualHost)
        }
    }

    @Test func portNobodyListensOn() async throws {
        let port = try unusedPort()
        let configuration = AMQPConfiguration(
            urls: [AMQPURL(host: "127.0.0.1", port: port)], policy: AMQPTest.fastPolicy, connectionName: "no-listener")
        await #expect(throws: AMQPError.connectionRefused(host: "127.0.0.1", port: port)) {
            _ = try await AMQPConnection.connect(configuration)
        }
    }

    @Test func failoverSkipsADeadURLOnFirstConnect() async throws {
        let dead = AMQPURL(host: "127.0.0.1", port: try unusedPort())
        let name = TestServers.uniqueName("failover")
        let configuration = AMQPConfiguration(
            urls: [dead, try brokerURL], policy: AMQPTest.fastPolicy, connectionName: name)
        let connection = try await AMQPConnection.connect(configuration)
        #expect(connection.state == .connected)
        #expect(try await connection.queueInfo(TestServers.uniqueName("none")) == nil)
        await connection.close()
    }

    @Test func queueRedeclaredWithOtherArgumentsThenConnectionStillWorks() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("redeclare"))
        var spec = AMQPQueue(TestServers.uniqueName("q-redeclare"))
        spec.maxLength = 10
        try await connection.declare(spec)
        try await connection.declare(spec)  // the same arguments: fine

        var other = spec
        other.maxLength = 20
        do {
            try await connection.declare(other)
            Issue.record("expected preconditionFailed")
        } catch let AMQPError.preconditionFailed(text) {
            #expect(text.contains("x-max-length"))
            #expect(text.contains(spec.name))
        }
        // Another kind of mismatch: durable vs transient.
        await #expect {
            try await connection.declare(AMQPQueue(spec.name, durable: false, arguments: spec.arguments))
        } throws: { error in
            if case .preconditionFailed = error as? AMQPError { return true }
            return false
        }

        // The same connection keeps working: publish, count, consume.
        try await connection.publish(AMQPMessage("still here"), routingKey: spec.name)
        #expect(try await connection.queueInfo(spec.name)?.messageCount == 1)
        let consumer = try await connection.consume(queue: spec.name)
        let got = try await AMQPTest.collect(consumer, for: .seconds(10), limit: 1)
        #expect(got.map(\.bodyString) == ["still here"])
        got.first?.ack()
        await consumer.cancel()
        try await connection.deleteQueue(spec.name)
        await connection.close()
    }

    @Test func consumingAMissingQueueIsNotFound() async throws {
        let connection = try await AMQPTest.connect(TestServers.uniqueName("consume-missing"))
        let missing = TestServers.uniqueName("q-missing")
        do {
            _ = try await connection.consume(queue: missing)
            Issue.record("expected notFound")
        } catch let AMQPError.notFound(text) {
            #expect(text.contains(missing))
        }
        #expect(try await connection.queueInfo(missing) == nil)
        // Binding to a missing exchange is a distinct error too, and the connection survives it.
        let queue = TestServers.uniqueName("q-bind")
        try await connection.declare(AMQPQueue(queue, durable: false, autoDelete: true))
        await #expect {
            try await connection.declare(AMQPBinding(queue: queue, exchange: TestServers.uniqueName("no-exchange")))
        } throws: { error in
            if case .notFound = error as? AMQPError { return true }
            return false
        }
        #expect(try await connection.queueInfo(queue)?.messageCount == 0)
        try await connection.deleteQueue(queue)
        await connection.close()
    }
}
