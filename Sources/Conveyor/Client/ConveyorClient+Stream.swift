import ConveyorAMQP
import ConveyorRedis

extension ConveyorClient {
    /// Submits a generator and returns its items as they are produced.
    ///
    /// The message is confirmed by the broker before this returns; iterating the stream then reads the items from
    /// Redis. Stopping the loop early (`break`, an error, cancelling the consuming task) cancels the generator, as
    /// ``ConveyorStream/cancel(reason:)`` does.
    ///
    /// - Parameters:
    ///   - options: ``TaskDefinition/defaultOptions`` when `nil`.
    ///   - backpressure: at most this many items produced and not yet taken by this stream's loop; the generator's
    ///     `yield` waits at the bound and resumes as the loop reads. `nil` (the default): no bound, the producer
    ///     never waits for readers and the items stay until the stream's TTL (the result TTL).
    /// - Throws: as ``submit(_:_:options:)``.
    public func stream<Definition: StreamDefinition>(
        _ definition: Definition.Type, _ input: Definition.Input, options: TaskOptions? = nil,
        backpressure: Int? = nil
    ) async throws -> ConveyorStream<Definition.Element> {
        let id = try await publishStream(
            name: Definition.name, args: [], kwargs: try Definition.encodeInput(input),
            options: options ?? Definition.defaultOptions, backpressure: backpressure)
        return ConveyorStream(
            id: id, client: self, cancelsOnEarlyExit: true, recordEvery: backpressure.map { max(1, $0 / 4) })
    }

    /// Submits a generator by name with raw JSON arguments and returns its items as JSON values.
    ///
    /// - Throws: as ``submit(name:args:kwargs:options:)``.
    public func stream(
        name: String, args: [JSONValue] = [], kwargs: [String: JSONValue] = [:], options: TaskOptions = TaskOptions(),
        backpressure: Int? = nil
    ) async throws -> ConveyorStream<JSONValue> {
        let id = try await publishStream(
            name: name, args: args, kwargs: kwargs, options: options, backpressure: backpressure)
        return ConveyorStream(
            id: id, client: self, cancelsOnEarlyExit: true, recordEvery: backpressure.map { max(1, $0 / 4) })
    }

    /// The items of generator `id`, submitted anywhere (another process, a Python producer), from its first item,
    /// whether it is still queued, running or finished. Stopping early leaves the generator running.
    ///
    /// - Parameter recordsPosition: record this reader's position (after every item), for a generator submitted with
    ///   a backpressure bound whose submitter does not read it.
    public func follow<Element: Decodable & Sendable>(
        _ id: String, as element: Element.Type = JSONValue.self, recordsPosition: Bool = false
    ) -> ConveyorStream<Element> {
        ConveyorStream(id: id, client: self, cancelsOnEarlyExit: false, recordEvery: recordsPosition ? 1 : nil)
    }

    /// Item `index` (from 0) of generator `id`, waiting until it is produced.
    ///
    /// - Throws: ``ConveyorError/timeout(id:after:)``; ``TaskError`` or ``ConveyorError/revoked(id:reason:)`` when the
    ///   generator ended before producing it (``ConveyorError/resultDecoding(id:reason:)`` naming the index when it
    ///   ended successfully with fewer items); the ``RedisError`` of a read.
    public func streamItem<Element: Decodable & Sendable>(
        _ id: String, index: Int, as element: Element.Type = JSONValue.self, timeout: Duration
    ) async throws -> Element {
        let key = store.keys.stream(id)
        let entryID = "0-\(index + 1)"
        if let entry = try await redis.xrange(key, from: entryID, to: entryID).first, let bytes = entry["item"] {
            do {
                return try JSONValue(json: bytes).decode(as: Element.self)
            } catch {
                throw ConveyorError.resultDecoding(id: id, reason: "item \(index): \(error)")
            }
        }
        return try await withThrowingTaskGroup(of: Element?.self) { group in
            group.addTask {
                for try await item in self.follow(id, as: Element.self).items where item.index == index {
                    return item.value
                }
                throw ConveyorError.resultDecoding(id: id, reason: "the generator ended before item \(index)")
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw ConveyorError.timeout(id: id, after: timeout)
            }
            return value
        }
    }

    /// Publishes a generator's message: a task message with `conveyor_kind` = `stream` and, when given, the
    /// backpressure bound.
    func publishStream(
        name: String, args: [JSONValue], kwargs: [String: JSONValue], options: TaskOptions, backpressure: Int?
    ) async throws -> String {
        let queue = queueName(options)
        let (id, prepared) = try outgoing(name: name, args: args, kwargs: kwargs, options: options, queue: queue)
        var message = prepared
        var headers: [String: JSONValue] = [ConveyorHeader.kind.headerName: .string(TaskKind.stream.rawValue)]
        if let backpressure {
            headers[ConveyorHeader.streamBound.headerName] = .int(Int64(max(1, backpressure)))
        }
        for (header, value) in AMQPTable(json: headers) { message.message.properties.headers[header] = value }
        try await ensureQueue(queue)
        try await publish(message)
        logger.trace("submitted a generator", metadata: ["task": .string(name), "id": .string(id)])
        return id
    }
}
