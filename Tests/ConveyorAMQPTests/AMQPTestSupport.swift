import ConveyorAMQP
import ConveyorIO
import ConveyorTestSupport
import Foundation
import Logging
import Testing

/// Helpers shared by the AMQP integration tests (real broker from `TestServers.amqpURL`).
enum AMQPTest {
    /// A policy that notices trouble and comes back fast, so tests stay short.
    // The login timeout is generous for the reason TestServers.policy gives.
    static let fastPolicy = ReconnectPolicy(
        connectTimeout: .seconds(15), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(500),
        heartbeat: .seconds(4), operationTimeout: .seconds(20))

    static func configuration(
        _ name: String, url: String = TestServers.amqpURL, policy: ReconnectPolicy = fastPolicy
    )
        throws -> AMQPConfiguration
    {
        var logger = Logger(label: "test.amqp")
        logger.logLevel = ProcessInfo.processInfo.environment["CONVEYOR_TEST_LOG"] == nil ? .error : .debug
        return try AMQPConfiguration(url: url, policy: policy, connectionName: name, logger: logger)
    }

    static func connect(
        _ name: String, url: String = TestServers.amqpURL, policy: ReconnectPolicy = fastPolicy
    )
        async throws -> AMQPConnection
    {
        try await AMQPConnection.connect(configuration(name, url: url, policy: policy))
    }

    /// The node `rabbitmqctl` talks to for the shared test broker.
    static var rabbitNode: String {
        TestServers.rabbitNode
    }

    /// Runs `rabbitmqctl -n node -q args...` and returns its output.
    static func rabbitmqctl(_ arguments: [String], node: String = rabbitNode) async throws -> String {
        try await ProcessRunner.run(
            executable: "/usr/lib/rabbitmq/bin/rabbitmqctl", arguments: ["-n", node, "-q"] + arguments,
            displayName: "rabbitmqctl \(arguments.joined(separator: " "))")
    }

    /// A file's contents as text.
    static func readFile(_ path: String) -> String { ProcessRunner.readFile(path) }

    /// Force-closes every connection whose client properties carry `connectionName`; returns how many.
    @discardableResult
    static func closeConnections(named connectionName: String, node: String = rabbitNode) async throws -> Int {
        let listing = try await rabbitmqctl(
            ["--no-table-headers", "list_connections", "pid", "client_properties"], node: node)
        let pids = listing.split(separator: "\n").filter { $0.contains("{\"connection_name\",\"\(connectionName)\"}") }
            .compactMap {
                $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).first.map(String.init)
            }
        for pid in pids { _ = try await rabbitmqctl(["close_connection", pid, "test: forced close"], node: node) }
        return pids.count
    }

    /// Collects deliveries from `consumer` for `duration` (or until `limit` arrived), settling none.
    static func collect(
        _ consumer: AMQPConsumer, for duration: Duration, limit: Int = .max
    ) async throws
        -> [AMQPDelivery]
    {
        try await withThrowingTaskGroup(of: [AMQPDelivery]?.self) { group in
            group.addTask {
                var got: [AMQPDelivery] = []
                for try await delivery in consumer {
                    got.append(delivery)
                    if got.count >= limit { break }
                }
                return got
            }
            group.addTask {
                try? await Task.sleep(for: duration)
                return nil
            }
            // Whichever finishes first; cancelling the other ends its iteration with what it has.
            var result: [AMQPDelivery] = []
            while let next = try await group.next() {
                if let got = next {
                    result = got
                    break
                }
                group.cancelAll()
            }
            group.cancelAll()
            while let next = try await group.next() { if let got = next { result = got } }
            return result
        }
    }

    /// Polls `condition` until it holds or `timeout` passes.
    static func eventually(
        timeout: Duration = .seconds(10), _ what: String, _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("timed out waiting for: \(what)")
    }

    /// Runs `body` and fails if it takes longer than `timeout`.
    static func within<T: Sendable>(
        _ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw TestFailure("timed out after \(timeout): \(what)")
            }
            return value
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
