import ConveyorIO

/// A message received on a subscribed channel.
public struct RedisMessage: Sendable, Hashable {
    /// The channel it was published on.
    public var channel: String
    /// The pattern that matched, for pattern subscriptions (``RedisSubscriber/psubscribe(_:timeout:)`` and
    /// ``RedisSubscriber/subscribe(channel:viaPattern:timeout:)``); `nil` for channel subscriptions.
    public var pattern: String?
    public var payload: [UInt8]

    public init(channel: String, pattern: String? = nil, payload: [UInt8]) {
        self.channel = channel
        self.pattern = pattern
        self.payload = payload
    }

    /// The payload decoded as UTF-8.
    public var string: String { String(decoding: payload, as: UTF8.self) }
}

/// The messages of one subscription, in the order Redis delivered them.
///
/// The subscription ends, and Redis is told (`UNSUBSCRIBE`) once no other subscription needs the channel, when
/// you call ``unsubscribe()``, when the iterating task is cancelled, or when the last copy of this value and
/// its iterator are gone (e.g. after `break`ing out of a `for await` over a local). After a reconnect the
/// subscription is restored by itself; messages published while disconnected are lost (Redis pub/sub keeps
/// nothing), see ``RedisSubscriber/reconnections()``.
///
/// - Important: iterate it from one task. Messages are buffered without bound until read.
public struct RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisMessage
    public typealias AsyncIterator = AsyncStream<RedisMessage>.Iterator

    let stream: AsyncStream<RedisMessage>
    let id: UInt64
    let inbox: Inbox<SubscriberRequest>

    public func makeAsyncIterator() -> AsyncStream<RedisMessage>.Iterator {
        stream.makeAsyncIterator()
    }

    /// Ends this subscription: its sequence finishes after the messages already received.
    public func unsubscribe() {
        inbox.push(.unsubscribe(id))
    }
}
