/// A message delivered to an ``AMQPConsumer``.
///
/// Settle every delivery exactly once with ``ack()``, ``nack(requeue:)`` or ``reject(requeue:)``: until then it
/// counts against the consumer's prefetch. Settling is cheap and does not wait: the connection's thread merges
/// acks into `multiple` frames on its next pass.
///
/// - Important: a delivery belongs to the connection (and channel) that delivered it. After a reconnect, settling
///   an older delivery does nothing and returns `false`; the broker redelivers that message instead.
public struct AMQPDelivery: Sendable {
    public let body: [UInt8]
    public let properties: AMQPProperties
    public let exchange: String
    public let routingKey: String
    /// The broker delivered this message before (to this or another consumer) without it being acked.
    public let redelivered: Bool
    /// The broker's tag for this delivery on its channel.
    public let deliveryTag: UInt64
    let settler: Settler
    let incarnation: UInt64

    init(
        body: [UInt8], properties: AMQPProperties, exchange: String, routingKey: String, redelivered: Bool,
        deliveryTag: UInt64, settler: Settler, incarnation: UInt64
    ) {
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routingKey = routingKey
        self.redelivered = redelivered
        self.deliveryTag = deliveryTag
        self.settler = settler
        self.incarnation = incarnation
    }

    /// Acknowledges the message: the broker forgets it.
    ///
    /// - Returns: `false` if the delivery came from a connection or channel that has since been replaced (it will
    ///   be redelivered), `true` if the ack was queued.
    @discardableResult
    public func ack() -> Bool { settler.settle(incarnation: incarnation, tag: deliveryTag, kind: .ack) }

    /// Negatively acknowledges the message; with `requeue` the broker delivers it again (flagged ``redelivered``),
    /// otherwise it is dead-lettered (or dropped when the queue has no dead-letter exchange).
    ///
    /// - Returns: `false` if the delivery is from a replaced connection or channel, `true` if queued.
    @discardableResult
    public func nack(requeue: Bool = true) -> Bool {
        settler.settle(incarnation: incarnation, tag: deliveryTag, kind: requeue ? .nackRequeue : .nackDrop)
    }

    /// Rejects the message; like ``nack(requeue:)`` but requeue defaults to `false` (dead-letter it).
    ///
    /// - Returns: `false` if the delivery is from a replaced connection or channel, `true` if queued.
    @discardableResult
    public func reject(requeue: Bool = false) -> Bool {
        settler.settle(incarnation: incarnation, tag: deliveryTag, kind: requeue ? .rejectRequeue : .rejectDrop)
    }

    /// The body decoded as UTF-8.
    public var bodyString: String { String(decoding: body, as: UTF8.self) }
}
