import Foundation

/// Whether the broker writes a message to disk.
public enum AMQPDeliveryMode: UInt8, Sendable, Hashable {
    /// Kept in memory only; lost when the broker restarts.
    case transient = 1
    /// Written to disk on a durable queue; survives a broker restart.
    case persistent = 2
}

/// The basic-class properties of a message (AMQP 0-9-1 content header).
///
/// Published messages are ``AMQPDeliveryMode/persistent`` unless told otherwise. On a received message a property
/// the publisher did not set is `nil` (and `headers` is empty).
public struct AMQPProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPTable
    public var deliveryMode: AMQPDeliveryMode?
    /// 0...255; only queues declared with `x-max-priority` use it.
    public var priority: UInt8?
    public var correlationId: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string (AMQP says so).
    public var expiration: String?
    public var messageId: String?
    /// Whole seconds on the wire.
    public var timestamp: Date?
    public var type: String?
    /// If set, the broker checks it equals the connection's user name.
    public var userId: String?
    public var appId: String?

    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: AMQPTable = [:],
        deliveryMode: AMQPDeliveryMode? = .persistent, priority: UInt8? = nil, correlationId: String? = nil,
        replyTo: String? = nil, expiration: String? = nil, messageId: String? = nil, timestamp: Date? = nil,
        type: String? = nil, userId: String? = nil, appId: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }
}
