import ConveyorIO
import Foundation

/// Where the servers started by `scripts/servers` listen, as the tests see them.
public enum TestServers {
    /// The broker URL for tests: `CONVEYOR_TEST_BROKER_URL`, else the local server `scripts/servers` starts.
    public static var amqpURL: String {
        ProcessInfo.processInfo.environment["CONVEYOR_TEST_BROKER_URL"]
            ?? "amqp://guest:guest@127.0.0.1:\(ProcessInfo.processInfo.environment["CONVEYOR_AMQP_PORT"] ?? "5672")/"
    }

    /// The Redis URL for tests: `CONVEYOR_TEST_REDIS_URL`, else the local server `scripts/servers` starts.
    public static var redisURL: String {
        ProcessInfo.processInfo.environment["CONVEYOR_TEST_REDIS_URL"]
            ?? "redis://127.0.0.1:\(ProcessInfo.processInfo.environment["CONVEYOR_REDIS_PORT"] ?? "6379")/0"
    }

    /// The Erlang node of the shared test broker, named as `scripts/servers` names it: `CONVEYOR_RABBIT_NODE`, else
    /// `conveyor@localhost` on the default AMQP port and `conveyor-PORT@localhost` on any other.
    public static var rabbitNode: String {
        let environment = ProcessInfo.processInfo.environment
        if let node = environment["CONVEYOR_RABBIT_NODE"], !node.isEmpty { return node }
        let port = environment["CONVEYOR_AMQP_PORT"] ?? "5672"
        return port == "5672" ? "conveyor@localhost" : "conveyor-\(port)@localhost"
    }

    /// The connection policy of fixtures that talk to the shared servers. Reconnects are quick, so outage tests end
    /// soon after the server is back; the connect (and AMQP login) timeout is generous because the first phase of
    /// `make test` runs some sixty suites at once on two cores, where a login that takes more than two seconds is
    /// load, not a fault (CI saw `login failed: request timed out` with 2 s).
    public static let policy = ReconnectPolicy(
        connectTimeout: .seconds(15), initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(300),
        heartbeat: .seconds(5), operationTimeout: .seconds(10))

    /// A name no other test uses, so tests can run in parallel against the same servers.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// The repository root (where `scripts/servers` lives), found from this source file.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }
}
