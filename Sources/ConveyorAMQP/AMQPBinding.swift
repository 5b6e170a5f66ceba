/// A binding: messages published to `source` with a matching routing key also go to `destination`.
public struct AMQPBinding: Sendable, Hashable {
    /// What a binding delivers to.
    public enum Destination: Sendable, Hashable {
        case queue(String)
        /// Exchange-to-exchange binding (a RabbitMQ extension).
        case exchange(String)
    }

    public var destination: Destination
    /// The exchange messages come from.
    public var source: String
    public var routingKey: String
    public var arguments: AMQPTable

    /// Binds queue `queue` to exchange `exchange`.
    public init(queue: String, exchange: String, routingKey: String = "", arguments: AMQPTable = [:]) {
        self.destination = .queue(queue)
        self.source = exchange
        self.routingKey = routingKey
        self.arguments = arguments
    }

    /// Binds exchange `destination` to exchange `source`.
    public init(exchange destination: String, source: String, routingKey: String = "", arguments: AMQPTable = [:]) {
        self.destination = .exchange(destination)
        self.source = source
        self.routingKey = routingKey
        self.arguments = arguments
    }
}
