import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

/// Shared helpers of the Redis tests.
enum RedisTest {
    /// A policy that notices outages and gives up quickly, so a test stays within seconds.
    static var quickPolicy: ReconnectPolicy { TestServers.policy }

    static func configuration(
        url: String = TestServers.redisURL, policy: ReconnectPolicy = quickPolicy
    ) throws
        -> RedisConfiguration
    {
        try RedisConfiguration(url: url, policy: policy)
    }

    /// A connection to the shared test server.
    static func connect(policy: ReconnectPolicy = quickPolicy) async throws -> RedisConnection {
        try await RedisConnection.connect(configuration(policy: policy))
    }

    /// A client of the shared test server.
    static func client(policy: ReconnectPolicy = quickPolicy) async throws -> RedisClient {
        try await RedisClient.connect(configuration(policy: policy))
    }

    /// Deletes every key starting with `prefix` (tests run in parallel on one server, each under its own prefix).
    static func deleteKeys(prefix: String, on sender: some RedisCommandSender) async throws {
        var cursor = "0"
        repeat {
            let reply = try await sender.send(
                RedisCommand("SCAN", cursor, "MATCH", "\(prefix)*", "COUNT", 1000), timeout: nil)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array
            else {
                Issue.record("unexpected SCAN reply \(reply)")
                return
            }
            let names = keys.compactMap(\.string)
            if !names.isEmpty { try await sender.del(names) }
            cursor = next
        } while cursor != "0"
    }

    /// The error `body` throws, or `nil` (recorded as an issue) when it does not throw a ``RedisError``.
    static func error(
        sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any
    ) async -> RedisError? {
        do {
            let value = try await body()
            Issue.record("expected a RedisError, got \(value)", sourceLocation: sourceLocation)
            return nil
        } catch let error as RedisError {
            return error
        } catch {
            Issue.record("expected a RedisError, got \(error)", sourceLocation: sourceLocation)
            return nil
        }
    }
}

struct TestTimeout: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Runs `body`, failing with ``TestTimeout`` if it takes longer than `limit` (a broken test must fail, not hang).
func within<T: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TestTimeout(what: what) }
        return value
    }
}
