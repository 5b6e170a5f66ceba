/// A subscription to a queue: an `AsyncSequence` of ``AMQPDelivery``.
///
/// The sequence ends (returns `nil`) after ``cancel()`` or when the connection is closed, once the deliveries
/// already received are consumed. It throws if the subscription cannot be kept, e.g.
/// ``AMQPError/consumerCancelled(queue:reason:)`` when the broker cancelled it and the queue was not declared
/// through this connection. A cancelled task's iteration ends with `nil`.
///
/// - Important: iterate from one task at a time. Settle deliveries with ``AMQPDelivery/ack()`` and friends from
///   any task.
public final class AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery
    public typealias Failure = any Error

    public let queue: String
    public let tag: String
    let id: UInt64
    /// Kept so the connection lives as long as its consumers.
    let connection: AMQPConnection
    let buffer: DeliveryBuffer

    init(connection: AMQPConnection, id: UInt64, queue: String, tag: String, buffer: DeliveryBuffer) {
        self.connection = connection
        self.id = id
        self.queue = queue
        self.tag = tag
        self.buffer = buffer
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let buffer: DeliveryBuffer

        /// The next delivery, waiting for one if needed; `nil` at the end or on task cancellation.
        public mutating func next() async throws -> AMQPDelivery? {
            try await buffer.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }

    /// Changes how many deliveries may be unsettled at a time, while consuming.
    ///
    /// RabbitMQ applies a new per-consumer prefetch only to new subscriptions, so the subscription is restarted
    /// in place (same channel and tag); deliveries already received stay valid. For a moment the old and new
    /// limits can both count.
    ///
    /// - Throws: a channel error from the broker (e.g. ``AMQPError/notFound(_:)`` if the queue is gone), or
    ///   ``AMQPError/closed``. While disconnected the new value is stored and used on resubscription.
    public func setPrefetch(_ prefetch: UInt16) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            if !connection.driver.submit(.setPrefetch(consumerID: id, prefetch: prefetch, continuation: continuation)) {
                continuation.resume(throwing: AMQPError.closed)
            }
        }
    }

    /// Stops the subscription. Deliveries already received are still yielded, then the sequence ends; settle
    /// them as usual (the channel closes once they are). Idempotent.
    public func cancel() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !connection.driver.submit(.cancel(consumerID: id, continuation: continuation)) { continuation.resume() }
        }
    }
}
