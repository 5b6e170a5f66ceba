/// A message to publish: its body bytes and properties.
public struct AMQPMessage: Sendable, Hashable {
    public var body: [UInt8]
    public var properties: AMQPProperties

    public init(body: [UInt8], properties: AMQPProperties = AMQPProperties()) {
        self.body = body
        self.properties = properties
    }

    /// A message whose body is the UTF-8 bytes of `text`.
    public init(_ text: String, properties: AMQPProperties = AMQPProperties()) {
        self.init(body: Array(text.utf8), properties: properties)
    }
}

/// One entry of ``AMQPConnection/publish(batch:timeout:)``: a message and where it goes.
public struct AMQPOutgoing: Sendable, Hashable {
    public var message: AMQPMessage
    /// The exchange; `""` is the default exchange, which routes to the queue named by the routing key.
    public var exchange: String
    public var routingKey: String
    /// Ask the broker to return the message (an error for the caller) when no queue receives it.
    public var mandatory: Bool

    public init(_ message: AMQPMessage, exchange: String = "", routingKey: String, mandatory: Bool = false) {
        self.message = message
        self.exchange = exchange
        self.routingKey = routingKey
        self.mandatory = mandatory
    }
}
