extension AMQPConnection {
    /// Subscribes to a queue with manual acknowledgements.
    ///
    /// The consumer gets a channel of its own. At most `prefetch` deliveries are unsettled at a time (0 means no
    /// limit), which also bounds how many are buffered client-side. After a reconnect the consumer is
    /// resubscribed with the same tag (its queue re-declared first if it was declared through this connection).
    ///
    /// - Parameters:
    ///   - consumerTag: a tag for the broker's listings; generated if `nil`.
    ///   - arguments: `basic.consume` arguments, e.g. `x-priority`.
    /// - Throws: ``AMQPError/notFound(_:)`` if the queue does not exist, ``AMQPError/resourceLocked(_:)`` for
    ///   another connection's exclusive queue, ``AMQPError/accessRefused(_:)``, ``AMQPError/connectionLost(_:)``,
    ///   ``AMQPError/closed``.
    public func consume(
        queue: String, prefetch: UInt16 = 16, consumerTag: String? = nil, arguments: AMQPTable = [:],
        timeout: Duration? = nil
    ) async throws -> AMQPConsumer {
        let id = driver.consumerIDs.add(1, ordering: .relaxed).newValue
        let tag = consumerTag ?? "\(configuration.connectionName).\(id)"
        let settler = Settler(consumerID: id, inbox: driver.inbox)
        let buffer = DeliveryBuffer()
        let deadline = deadline(timeout)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let request = ConsumeRequest(
                queue: queue, tag: tag, prefetch: prefetch, arguments: arguments, buffer: buffer, settler: settler,
                deadline: deadline, continuation: continuation)
            if !driver.submit(.consume(request)) { continuation.resume(throwing: AMQPError.closed) }
        }
        return AMQPConsumer(connection: self, id: id, queue: queue, tag: tag, buffer: buffer)
    }
}
