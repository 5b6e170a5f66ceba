import ConveyorRedis

/// Cleans up what a test wrote to Redis under its own key prefix.
public enum RedisTestKeys {
    /// Deletes every key starting with `prefix` (SCAN, so it is safe on a shared server).
    ///
    /// - Throws: the ``RedisError`` of the calls, or ``TestSupportError`` for a reply SCAN never gives.
    public static func delete(prefix: String, on redis: RedisClient) async throws {
        let names = try await keys(prefix: prefix, on: redis)
        for start in stride(from: 0, to: names.count, by: 1000) {
            _ = try await redis.del(Array(names[start..<min(start + 1000, names.count)]))
        }
    }

    /// Every key starting with `prefix` (SCAN).
    ///
    /// - Throws: the ``RedisError`` of the calls, or ``TestSupportError`` for a reply SCAN never gives.
    public static func keys(prefix: String, on redis: RedisClient) async throws -> [String] {
        var cursor = "0"
        var names: [String] = []
        repeat {
            let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", "\(prefix)*", "COUNT", 1000))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let found = parts[1].array
            else { throw TestSupportError("unexpected SCAN reply \(reply)") }
            names += found.compactMap(\.string)
            cursor = next
        } while cursor != "0"
        return names
    }
}

/// A test's own failure, with a message saying what did not happen.
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
