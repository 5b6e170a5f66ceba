import ConveyorAMQP

extension ConveyorClient {
    /// Pauses before republishing nacked messages: a quorum queue nacks while its leader is not ready (a node just
    /// started or restarted, or busy enough that the channel's command to the leader timed out), which passes.
    static let nackRetryDelays: [Duration] = [.milliseconds(50), .milliseconds(200), .milliseconds(800), .seconds(2)]

    /// Publishes task messages (mandatory, confirmed) and republishes the ones the broker nacks, up to
    /// ``nackRetryDelays``'s count more times.
    ///
    /// A nacked message may or may not have been queued, and republishing it may queue it twice; that is safe for
    /// task messages because a task's id decides whether it runs: a worker's claim runs the second delivery of an id
    /// only if the first never produced an outcome (docs/PROTOCOL.md, claim).
    ///
    /// - Parameter batch: publish as a batch (``AMQPConnection/publish(batch:timeout:)``), whose failure is always
    ///   ``AMQPError/batchFailed(_:)``, even for one message; otherwise `messages` holds one message, published alone.
    /// - Throws: as a batch, ``AMQPError/batchFailed(_:)`` listing what still failed, by position in `messages`
    ///   (the others were confirmed); alone, the message's ``AMQPError``.
    func publishTasks(_ messages: [AMQPOutgoing], batch: Bool) async throws {
        var pending = Array(messages.indices)
        var attempt = 0
        while true {
            let failures: [AMQPBatchFailure]
            do {
                if !batch, let only = pending.first {
                    let message = messages[only]
                    try await broker.publish(
                        message.message, exchange: message.exchange, routingKey: message.routingKey,
                        mandatory: message.mandatory)
                } else {
                    try await broker.publish(batch: pending.map { messages[$0] })
                }
                return
            } catch AMQPError.batchFailed(let failed) {
                failures = failed.map { AMQPBatchFailure(index: pending[$0.index], error: $0.error) }
            } catch AMQPError.nacked where !batch {
                failures = [AMQPBatchFailure(index: pending[0], error: .nacked)]
            }
            let nacked = failures.filter { $0.error == .nacked }
            guard attempt < Self.nackRetryDelays.count, nacked.count == failures.count else {
                if !batch, let only = failures.first { throw only.error }
                throw AMQPError.batchFailed(failures)
            }
            logger.warning(
                "the broker nacked task messages; publishing them again",
                metadata: ["messages": "\(nacked.count)", "attempt": "\(attempt + 1)"])
            try await Task.sleep(for: Self.nackRetryDelays[attempt])
            attempt += 1
            pending = nacked.map(\.index)
        }
    }
}
