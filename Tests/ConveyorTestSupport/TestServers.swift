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
