import ConveyorIO

extension AMQPConnection {
    /// Publishes one message and returns once the broker confirmed it (publisher confirms).
    ///
    /// A message not confirmed when the connection breaks is published again on the next connection, until the
    /// deadline; a publish issued while disconnected waits for the reconnect. At-least-once: after a reconnect
    /// the broker may hold a message twice.
    ///
    /// - Parameters:
    ///   - exchange: `""` is the default exchange, which routes to the queue named `routingKey`.
    ///   - mandatory: when no queue receives the message, fail with ``AMQPError/returned(replyCode:replyText:)``
    ///     instead of letting the broker drop it.
    ///   - timeout: the deadline for the confirm; the policy's `operationTimeout` if `nil`.
    /// - Throws: ``AMQPError/nacked`` (e.g. a full `reject-publish` queue), ``AMQPError/returned(replyCode:replyText:)``,
    ///   ``AMQPError/timeout`` (not confirmed in time; it may still have been delivered),
    ///   ``AMQPError/connectionLost(_:)`` (no connection before the deadline), ``AMQPError/notFound(_:)`` (no such
    ///   exchange), ``AMQPError/closed``.
    public func publish(
        _ message: AMQPMessage, exchange: String = "", routingKey: String, mandatory: Bool = false,
        timeout: Duration? = nil
    ) async throws {
        let request = PublishRequest(
            items: [AMQPOutgoing(message, exchange: exchange, routingKey: routingKey, mandatory: mandatory)],
            deadline: deadline(timeout), isBatch: false)
        try await submit(request)
    }

    /// Publishes a batch in one pass and returns once the broker confirmed every message of it.
    ///
    /// Much faster than publishing one by one: all messages are written together and the broker confirms them
    /// with a few merged acks. Messages keep their order.
    ///
    /// - Throws: ``AMQPError/batchFailed(_:)`` listing the index and error of each message that was nacked,
    ///   returned, or not confirmed by the deadline (the others were confirmed), or ``AMQPError/closed``.
    public func publish(batch: [AMQPOutgoing], timeout: Duration? = nil) async throws {
        guard !batch.isEmpty else { return }
        try await submit(PublishRequest(items: batch, deadline: deadline(timeout), isBatch: true))
    }

    private func submit(_ request: PublishRequest) async throws {
        try await withIOThrowingContinuation { (continuation: IOContinuation<Void, any Error>) in
            request.continuation = continuation
            if !driver.submit(.publish(request)) {
                request.continuation = nil
                continuation.resume(throwing: AMQPError.closed)
            }
        }
    }
}
