import ConveyorRedis
import Foundation

/// A FIFO queue any process can use (Ray's `Queue`): a Redis list `P fifo:<name>`, items as JSON.
///
/// ```swift
/// let jobs = DistributedQueue<Job>(name: "jobs", maxSize: 100, client: client)
/// try await jobs.put(job, timeout: .seconds(5))
/// let next = try await jobs.get(timeout: .seconds(5))
/// ```
///
/// `put` on a full queue and `get` on an empty one wait up to their timeouts. Items are removed atomically, so
/// each is got by exactly one caller.
public struct DistributedQueue<Element: Codable & Sendable>: Sendable {
    public let name: String
    /// The most items the queue holds; `nil` for no bound.
    public let maxSize: Int?
    let client: ConveyorClient

    public init(name: String, maxSize: Int? = nil, client: ConveyorClient) {
        self.name = name
        self.maxSize = maxSize
        self.client = client
    }

    var key: String { client.store.keys.fifo(name) }

    /// Appends `item`, waiting up to `timeout` for room when the queue is full.
    ///
    /// - Throws: ``DistributedQueueError/full(name:)`` when there is still no room after `timeout`, or Redis's
    ///   errors.
    public func put(_ item: Element, timeout: Duration = .zero) async throws {
        let bytes = try JSONValue(encoding: item).jsonBytes()
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(5)
        while true {
            let reply = try await client.redis.evalScript(
                ActorScripts.fifoPut, keys: [key], arguments: [client.store.keys.prefix, maxSize ?? 0, bytes])
            if (reply.int ?? -1) >= 0 { return }
            // Full: there is no notification for room, so poll with a short, growing pause.
            if ContinuousClock.now >= deadline { throw DistributedQueueError.full(name: name) }
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .milliseconds(100))
        }
    }

    /// Removes and returns the oldest item, waiting up to `timeout` (whole milliseconds) for one.
    ///
    /// - Returns: `nil` when the queue stayed empty for `timeout`.
    /// - Throws: ``DistributedQueueError/undecodable(name:reason:)`` for an item that is not an `Element`, or
    ///   Redis's errors.
    public func get(timeout: Duration) async throws -> Element? {
        let milliseconds = max(
            Int64(timeout.components.seconds) * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000, 1)
        let seconds = String(format: "%.3f", Double(milliseconds) / 1000)
        let reply = try await client.redis.blocking(
            RedisCommand("BLPOP", key, seconds), timeout: timeout + .seconds(5))
        guard let pair = reply.array, pair.count == 2, let bytes = pair[1].bytes else { return nil }
        do {
            return try JSONValue(json: bytes).decode(as: Element.self)
        } catch {
            throw DistributedQueueError.undecodable(name: name, reason: String(describing: error))
        }
    }

    /// How many items the queue holds now.
    ///
    /// - Throws: Redis's errors.
    public func count() async throws -> Int {
        try await client.redis.send(RedisCommand("LLEN", key)).int ?? 0
    }

    /// Removes every item and the queue's key.
    ///
    /// - Throws: Redis's errors.
    public func delete() async throws {
        _ = try await client.redis.send(RedisCommand("DEL", key))
    }
}

/// What a ``DistributedQueue`` throws.
public enum DistributedQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The queue held `maxSize` items for the whole timeout of a `put`.
    case full(name: String)
    /// An item did not decode as the queue's element type.
    case undecodable(name: String, reason: String)

    public var description: String {
        switch self {
        case .full(let name): "distributed queue '\(name)' is full"
        case .undecodable(let name, let reason): "an item of distributed queue '\(name)' cannot be decoded: \(reason)"
        }
    }
}
