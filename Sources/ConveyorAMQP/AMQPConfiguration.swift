import ConveyorIO
import Logging

/// How to reach the broker and how to behave when the link fails.
public struct AMQPConfiguration: Sendable {
    /// Brokers to try, in turn: each connection attempt uses the next one (a cluster's nodes, for failover).
    public var urls: [AMQPURL]
    /// Connect timeout, heartbeat, reconnect backoff, and the default deadline of one operation.
    public var policy: ReconnectPolicy
    /// Shown by `rabbitmqctl list_connections client_properties` and the management UI as `connection_name`.
    public var connectionName: String
    public var logger: Logger

    public init(
        urls: [AMQPURL], policy: ReconnectPolicy = .default, connectionName: String = "conveyor",
        logger: Logger = Logger(label: "conveyor.amqp")
    ) {
        self.urls = urls
        self.policy = policy
        self.connectionName = connectionName
        self.logger = logger
    }

    /// A configuration for one broker URL string.
    ///
    /// - Throws: ``AMQPError/invalidURL(_:)`` when `url` does not parse.
    public init(
        url: String, policy: ReconnectPolicy = .default, connectionName: String = "conveyor",
        logger: Logger = Logger(label: "conveyor.amqp")
    ) throws(AMQPError) {
        self.init(urls: [try AMQPURL(string: url)], policy: policy, connectionName: connectionName, logger: logger)
    }
}
