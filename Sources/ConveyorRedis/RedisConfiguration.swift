import ConveyorIO
import Logging

/// How to reach Redis and how to behave when it goes away.
public struct RedisConfiguration: Sendable {
    public var url: RedisURL
    /// Connect timeout, TCP keepalive (`heartbeat`), reconnect backoff and the default command deadline
    /// (`operationTimeout`): the one policy every Conveyor connection follows.
    public var policy: ReconnectPolicy
    public var logger: Logger

    public init(url: RedisURL, policy: ReconnectPolicy = .default, logger: Logger = Logger(label: "conveyor.redis")) {
        self.url = url
        self.policy = policy
        self.logger = logger
    }

    /// - Throws: ``RedisError/invalidURL(_:)`` when `url` does not parse.
    public init(
        url: String, policy: ReconnectPolicy = .default, logger: Logger = Logger(label: "conveyor.redis")
    ) throws(RedisError) {
        self.init(url: try RedisURL(string: url), policy: policy, logger: logger)
    }
}
