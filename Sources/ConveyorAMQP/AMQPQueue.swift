/// A queue to declare, with typed accessors for the `x-` arguments Conveyor uses.
///
/// Declaring a queue that exists with the same settings is a no-op; with other settings the broker answers
/// ``AMQPError/preconditionFailed(_:)``.
public struct AMQPQueue: Sendable, Hashable {
    public var name: String
    /// Survives a broker restart (default). Quorum queues must be durable.
    public var durable: Bool
    /// Used by this connection only and deleted when it closes.
    public var exclusive: Bool
    /// Deleted when its last consumer is cancelled.
    public var autoDelete: Bool
    public var arguments: AMQPTable

    public init(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: AMQPTable = [:]
    ) {
        self.name = name
        self.durable = durable
        self.exclusive = exclusive
        self.autoDelete = autoDelete
        self.arguments = arguments
    }

    /// `x-queue-type`.
    public enum QueueType: String, Sendable, Hashable {
        case classic
        case quorum
        case stream
    }

    /// `x-overflow`: what a full queue (`x-max-length`) does with a new message.
    public enum Overflow: String, Sendable, Hashable {
        /// Drop the oldest message (the default).
        case dropHead = "drop-head"
        /// Refuse the new one: a confirmed publisher gets ``AMQPError/nacked``.
        case rejectPublish = "reject-publish"
        /// Refuse and dead-letter the new one.
        case rejectPublishDeadLetter = "reject-publish-dlx"
    }

    /// `x-queue-type`: quorum queues are replicated and support ``deliveryLimit``.
    public var queueType: QueueType? {
        get { arguments["x-queue-type"]?.stringValue.flatMap(QueueType.init(rawValue:)) }
        set { arguments["x-queue-type"] = newValue.map { .string($0.rawValue) } }
    }

    /// `x-dead-letter-exchange`: where rejected, expired and over-delivered messages go.
    public var deadLetterExchange: String? {
        get { arguments["x-dead-letter-exchange"]?.stringValue }
        set { arguments["x-dead-letter-exchange"] = newValue.map { .string($0) } }
    }

    /// `x-dead-letter-routing-key`: the routing key dead-lettered messages get (else their own).
    public var deadLetterRoutingKey: String? {
        get { arguments["x-dead-letter-routing-key"]?.stringValue }
        set { arguments["x-dead-letter-routing-key"] = newValue.map { .string($0) } }
    }

    /// `x-delivery-limit` (quorum queues): after this many redeliveries a message is dead-lettered or dropped.
    public var deliveryLimit: Int? {
        get { arguments["x-delivery-limit"]?.intValue.map { Int($0) } }
        set { arguments["x-delivery-limit"] = newValue.map { .int(Int64($0)) } }
    }

    /// `x-single-active-consumer`: only one consumer receives at a time; the next takes over when it goes.
    public var singleActiveConsumer: Bool {
        get { arguments["x-single-active-consumer"]?.boolValue ?? false }
        set { arguments["x-single-active-consumer"] = newValue ? .bool(true) : nil }
    }

    /// `x-max-priority`: enables message priorities 0...n on a classic queue.
    public var maxPriority: Int? {
        get { arguments["x-max-priority"]?.intValue.map { Int($0) } }
        set { arguments["x-max-priority"] = newValue.map { .int(Int64($0)) } }
    }

    /// `x-max-length`: the most messages the queue holds; see ``overflow``.
    public var maxLength: Int? {
        get { arguments["x-max-length"]?.intValue.map { Int($0) } }
        set { arguments["x-max-length"] = newValue.map { .int(Int64($0)) } }
    }

    /// `x-overflow`.
    public var overflow: Overflow? {
        get { arguments["x-overflow"]?.stringValue.flatMap(Overflow.init(rawValue:)) }
        set { arguments["x-overflow"] = newValue.map { .string($0.rawValue) } }
    }
}

/// What a passive declare tells about a queue.
public struct AMQPQueueInfo: Sendable, Hashable {
    public var name: String
    /// Messages ready for delivery (not counting those delivered and unacknowledged).
    public var messageCount: Int
    public var consumerCount: Int

    public init(name: String, messageCount: Int, consumerCount: Int) {
        self.name = name
        self.messageCount = messageCount
        self.consumerCount = consumerCount
    }
}
