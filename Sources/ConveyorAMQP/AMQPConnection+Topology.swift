extension AMQPConnection {
    /// Declares an exchange and records it, so it is declared again after a reconnect.
    ///
    /// - Throws: ``AMQPError/preconditionFailed(_:)`` if it exists with other settings, ``AMQPError/accessRefused(_:)``,
    ///   or ``AMQPError/connectionLost(_:)`` if no connection came up before the deadline.
    public func declare(_ exchange: AMQPExchange, timeout: Duration? = nil) async throws {
        _ = try await perform(.declareExchange(exchange), timeout: timeout)
    }

    /// Declares a queue and records it, so it is declared again after a reconnect (or after the broker cancels a
    /// consumer because the queue was deleted). A queue with an empty name gets a server-generated name; such a
    /// queue is not recorded.
    ///
    /// - Returns: the queue's name, message count and consumer count.
    /// - Throws: ``AMQPError/preconditionFailed(_:)`` if the queue exists with other arguments (the connection
    ///   stays usable), ``AMQPError/resourceLocked(_:)`` for another connection's exclusive queue,
    ///   ``AMQPError/accessRefused(_:)``, ``AMQPError/connectionLost(_:)``.
    @discardableResult
    public func declare(_ queue: AMQPQueue, timeout: Duration? = nil) async throws -> AMQPQueueInfo {
        guard case .queue(let info?) = try await perform(.declareQueue(queue), timeout: timeout) else {
            throw AMQPError.protocolError("queue.declare returned no queue")
        }
        return info
    }

    /// Declares a binding and records it, so it is declared again after a reconnect.
    ///
    /// - Throws: ``AMQPError/notFound(_:)`` if the queue or exchange does not exist, ``AMQPError/connectionLost(_:)``.
    public func declare(_ binding: AMQPBinding, timeout: Duration? = nil) async throws {
        _ = try await perform(.bind(binding), timeout: timeout)
    }

    /// Removes a binding (and forgets it).
    ///
    /// - Throws: ``AMQPError/notFound(_:)``, ``AMQPError/connectionLost(_:)``.
    public func unbind(_ binding: AMQPBinding, timeout: Duration? = nil) async throws {
        _ = try await perform(.unbind(binding), timeout: timeout)
    }

    /// How many messages and consumers a queue has, by a passive declare; `nil` if it does not exist.
    ///
    /// - Throws: ``AMQPError/accessRefused(_:)``, ``AMQPError/connectionLost(_:)``.
    public func queueInfo(_ name: String, timeout: Duration? = nil) async throws -> AMQPQueueInfo? {
        guard case .queue(let info) = try await perform(.queueInfo(name), timeout: timeout) else { return nil }
        return info
    }

    /// Deletes a queue (and forgets it, so it is not re-declared). Deleting a missing queue succeeds.
    ///
    /// - Returns: how many messages it held.
    /// - Throws: ``AMQPError/preconditionFailed(_:)`` when `ifUnused`/`ifEmpty` do not hold,
    ///   ``AMQPError/connectionLost(_:)``.
    @discardableResult
    public func deleteQueue(
        _ name: String, ifUnused: Bool = false, ifEmpty: Bool = false, timeout: Duration? = nil
    )
        async throws -> Int
    {
        guard
            case .count(let count) = try await perform(
                .deleteQueue(name: name, ifUnused: ifUnused, ifEmpty: ifEmpty), timeout: timeout)
        else { return 0 }
        return count
    }

    /// Removes every ready message from a queue.
    ///
    /// - Returns: how many were removed.
    /// - Throws: ``AMQPError/notFound(_:)``, ``AMQPError/connectionLost(_:)``.
    @discardableResult
    public func purgeQueue(_ name: String, timeout: Duration? = nil) async throws -> Int {
        guard case .count(let count) = try await perform(.purgeQueue(name), timeout: timeout) else { return 0 }
        return count
    }

    /// Deletes an exchange (and forgets it and its bindings).
    ///
    /// - Throws: ``AMQPError/preconditionFailed(_:)`` when `ifUnused` does not hold, ``AMQPError/connectionLost(_:)``.
    public func deleteExchange(_ name: String, ifUnused: Bool = false, timeout: Duration? = nil) async throws {
        _ = try await perform(.deleteExchange(name: name, ifUnused: ifUnused), timeout: timeout)
    }

    private func perform(
        _ operation: TopologyRequest.Operation, timeout: Duration?
    ) async throws
        -> TopologyRequest.Result
    {
        let deadline = deadline(timeout)
        return try await withCheckedThrowingContinuation { continuation in
            let request = TopologyRequest(operation: operation, deadline: deadline, continuation: continuation)
            if !driver.submit(.topology(request)) { continuation.resume(throwing: AMQPError.closed) }
        }
    }
}
