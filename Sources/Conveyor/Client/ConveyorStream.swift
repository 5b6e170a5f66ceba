import ConveyorRedis

/// One item of a generator's stream: its index (from 0) and its value.
public struct StreamItem<Element: Decodable & Sendable>: Sendable {
    /// The generator task's id.
    public let taskID: String
    /// The item's position, from 0: its stream entry is `0-<index+1>`.
    public let index: Int
    public let value: Element
}

/// The items of a generator task, in order, as they are produced: `for try await element in stream { … }`.
///
/// Iterating reads the task's Redis stream from its first item with blocking `XREAD` on a dedicated connection
/// (batches of up to 1,000 entries), so it works from any process, before, while and after the generator runs, and
/// each iteration reads the whole stream independently.
///
/// The sequence ends after the last item when the generator returns. It throws ``TaskError`` when the generator
/// failed, ``ConveyorError/revoked(id:reason:)`` when it was cancelled, in order after the items produced before.
/// A stream made by ``ConveyorClient/stream(_:_:options:backpressure:)`` cancels its generator when the loop stops
/// early (`break`, a thrown error, or cancellation of the consuming task).
public struct ConveyorStream<Element: Decodable & Sendable>: AsyncSequence, Sendable {
    /// The generator task's id.
    public let id: String
    let client: ConveyorClient
    let cancelsOnEarlyExit: Bool
    /// Record the read position every this many items (and whenever the reader has caught up); `nil`: never.
    let recordEvery: Int?

    init(id: String, client: ConveyorClient, cancelsOnEarlyExit: Bool, recordEvery: Int?) {
        self.id = id
        self.client = client
        self.cancelsOnEarlyExit = cancelsOnEarlyExit
        self.recordEvery = recordEvery.map { Swift.max(1, $0) }
    }

    /// The task's final result, the number of items it produced.
    public var ref: ObjectRef<Int> { ObjectRef(id: id, client: client, submittedHere: cancelsOnEarlyExit) }

    /// The same items with their indices, for callers that want to refer to an item later
    /// (``ConveyorClient/streamItem(_:index:as:timeout:)``).
    public var items: StreamItems<Element> { StreamItems(stream: self) }

    /// Cancels the generator (``ConveyorClient/cancel(_:reason:)``); readers see ``ConveyorError/revoked(id:reason:)``
    /// after the items produced until then.
    @discardableResult
    public func cancel(reason: String = "cancelled") async throws -> RevokeOutcome {
        try await client.cancel(id, reason: reason)
    }

    public func makeAsyncIterator() -> Iterator { Iterator(reader: StreamReader(stream: self)) }

    public struct Iterator: AsyncIteratorProtocol {
        let reader: StreamReader<Element>

        public mutating func next() async throws -> Element? { try await reader.next()?.value }
    }

}

/// A generator's ``StreamItem``s (index and value), from ``ConveyorStream/items``.
public struct StreamItems<Value: Decodable & Sendable>: AsyncSequence, Sendable {
    public typealias Element = StreamItem<Value>
    let stream: ConveyorStream<Value>

    public func makeAsyncIterator() -> Iterator { Iterator(reader: StreamReader(stream: stream)) }

    public struct Iterator: AsyncIteratorProtocol {
        let reader: StreamReader<Value>

        public mutating func next() async throws -> StreamItem<Value>? { try await reader.next() }
    }
}

/// One iteration over a generator's stream: the entries read ahead, the position handed out, the end.
///
/// A class so that dropping an iterator before the end (`break`) is noticed: its `deinit` cancels the generator when
/// the stream asks for that.
final class StreamReader<Element: Decodable & Sendable> {
    /// How long one `XREAD` blocks; between blocks the task's state is checked, so a generator that ended without
    /// a marker (dead-lettered, revoked before it ran) ends the iteration instead of hanging it.
    static var block: Duration { .seconds(1) }
    static var batch: Int { 1_000 }

    let stream: ConveyorStream<Element>
    let key: String
    private var after = "0-0"
    /// Entries read ahead, and the next one to hand out.
    private var buffer: [RedisStreamEntry] = []
    private var bufferIndex = 0
    /// Items handed out so far.
    private var handedOut = 0
    /// The position last recorded in Redis (when this reader records one).
    private var recorded = 0
    private var finished = false

    init(stream: ConveyorStream<Element>) {
        self.stream = stream
        key = stream.client.store.keys.stream(stream.id)
    }

    deinit {
        guard !finished, stream.cancelsOnEarlyExit else { return }
        // The loop stopped early (break): cancel the generator. `deinit` cannot await, so the revoke runs as a task
        // of its own; it is one script call and needs nothing of this reader.
        let stream = self.stream
        Task { _ = try? await stream.client.cancel(stream.id, reason: "the consumer stopped reading") }
    }

    func next() async throws -> StreamItem<Element>? {
        if finished { return nil }
        do {
            return try await advance()
        } catch {
            let stopEarly = !finished
            finished = true
            if stopEarly, stream.cancelsOnEarlyExit, error is CancellationError {
                _ = try? await stream.client.cancel(stream.id, reason: "the consumer was cancelled")
            }
            throw error
        }
    }

    private func advance() async throws -> StreamItem<Element>? {
        // The items handed out so far have been consumed now. Recording that wakes a producer held at its bound; it
        // is done every quarter bound, and always before waiting for more (the producer may be waiting for it).
        if let every = stream.recordEvery, handedOut > recorded,
            handedOut - recorded >= every || bufferIndex >= buffer.count
        {
            try await stream.client.store.recordStreamRead(stream.id, position: handedOut)
            recorded = handedOut
        }
        while true {
            while bufferIndex < buffer.count {
                let entry = buffer[bufferIndex]
                bufferIndex += 1
                if let bytes = entry["item"] {
                    let index = Self.sequence(of: entry.id).map { $0 - 1 } ?? handedOut
                    handedOut += 1
                    return StreamItem(taskID: stream.id, index: index, value: try decode(bytes))
                }
                if let state = entry["end"] {
                    finished = true
                    try end(
                        state: String(decoding: state, as: UTF8.self),
                        type: entry["error_type"].map { String(decoding: $0, as: UTF8.self) },
                        message: entry["error_message"].map { String(decoding: $0, as: UTF8.self) })
                    return nil
                }
            }
            try Task.checkCancellation()
            buffer = try await read(block: Self.block)
            bufferIndex = 0
            if !buffer.isEmpty { continue }
            // Nothing for a whole block: if the task is ready without a marker, it never ran as a generator.
            let status = try await stream.client.status(stream.id)
            guard status.state.isReady else { continue }
            buffer = try await read(block: nil)
            if !buffer.isEmpty { continue }
            finished = true
            try end(state: status.state.rawValue, type: status.error?.type, message: status.error?.message)
            return nil
        }
    }

    private func read(block: Duration?) async throws -> [RedisStreamEntry] {
        let client = stream.client
        let streams = [(key: key, after: after)]
        let timeout = client.redis.configuration.policy.operationTimeout + (block ?? .zero)
        let result = try await client.redis.withDedicatedConnection { connection in
            try await connection.xread(streams, count: Self.batch, block: block, timeout: timeout)
        }
        let entries = result[key] ?? []
        if let last = entries.last { after = last.id }
        return entries
    }

    /// Throws what a final state other than SUCCESS stands for.
    private func end(state: String, type: String?, message: String?) throws {
        switch state {
        case TaskState.success.rawValue: return
        case TaskState.revoked.rawValue:
            throw ConveyorError.revoked(id: stream.id, reason: message ?? "revoked")
        default:
            throw TaskError(id: stream.id, type: type ?? "UnknownError", message: message ?? state)
        }
    }

    private func decode(_ bytes: [UInt8]) throws -> Element {
        do {
            let value = try JSONValue(json: bytes)
            if let same = value as? Element { return same }
            return try value.decode(as: Element.self)
        } catch {
            throw ConveyorError.resultDecoding(id: stream.id, reason: "item \(handedOut - 1): \(error)")
        }
    }

    /// `N` of an entry id `0-N`.
    static func sequence(of id: String) -> Int? {
        guard let dash = id.firstIndex(of: "-") else { return nil }
        return Int(id[id.index(after: dash)...])
    }
}
