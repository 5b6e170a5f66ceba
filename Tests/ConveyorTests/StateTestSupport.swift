import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// A task store under a key prefix of its own on the shared test Redis, deleted afterwards.
struct StateFixture {
    let client: RedisClient
    let store: TaskStore
    let prefix: String

    var keys: RedisKeys { store.keys }

    static var policy: ReconnectPolicy { TestServers.policy }

    /// A fixed "now" for tests that move through leases by passing times instead of waiting.
    static let t0: Int64 = 1_800_000_000_000

    /// Runs `body` with a fresh store whose keys (Celery's result keys included) all start with a unique prefix,
    /// then deletes them, whether `body` threw or not.
    static func with<T>(
        _ name: String = "state", resultTTL: Duration = .seconds(86_400),
        _ body: (StateFixture) async throws -> T
    ) async throws -> T {
        let prefix = TestServers.uniqueName("test-\(name)") + ":"
        let client = try await RedisClient.connect(RedisConfiguration(url: TestServers.redisURL, policy: policy))
        let store = TaskStore(
            redis: client,
            configuration: .init(keys: RedisKeys(prefix: prefix, resultPrefix: prefix), resultTTL: resultTTL))
        let fixture = StateFixture(client: client, store: store, prefix: prefix)
        do {
            let result = try await body(fixture)
            try await fixture.cleanUp()
            await client.close()
            return result
        } catch {
            try? await fixture.cleanUp()
            await client.close()
            throw error
        }
    }

    func cleanUp() async throws {
        var cursor = "0"
        repeat {
            let reply = try await client.send(RedisCommand("SCAN", cursor, "MATCH", "\(prefix)*", "COUNT", 1000))
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let found = parts[1].array
            else { throw TaskStoreError.unexpectedReply(script: "SCAN", reply: reply.description) }
            let names = found.compactMap(\.string)
            if !names.isEmpty { _ = try await client.del(names) }
            cursor = next
        } while cursor != "0"
    }

    /// A fresh task id.
    func newID() -> String { UUID().uuidString.lowercased() }

    /// The stored result meta as JSON, parsed.
    func metaObject(_ id: String) async throws -> [String: JSONValue]? {
        guard let bytes = try await client.get(keys.result(id)) else { return nil }
        guard case .object(let fields) = try JSONValue(json: bytes) else { return nil }
        return fields
    }

    /// Claims with defaults suitable for tests; times explicit.
    func claim(
        _ id: String, worker: String = "w1", now: Int64 = StateFixture.t0, lease: Duration = .seconds(30),
        expiresMs: Int64? = nil, maxAttempts: Int = 5, replyTo: String? = nil
    ) async throws -> ClaimOutcome {
        try await store.claim(
            id, worker: worker, name: "examples.add", queue: "celery", lease: lease, expiresMs: expiresMs,
            maxAttempts: maxAttempts, replyTo: replyTo, now: now)
    }

    /// The token of a claim that must be `.run`.
    func run(
        _ id: String, worker: String = "w1", now: Int64 = StateFixture.t0, lease: Duration = .seconds(30),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> Int64 {
        let outcome = try await claim(id, worker: worker, now: now, lease: lease)
        guard case .run(let token, _) = outcome else {
            Issue.record("expected .run, got \(outcome)", sourceLocation: sourceLocation)
            throw TestFailure("claim did not return .run")
        }
        return token
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The first message of `subscription`, or `nil` after `timeout`.
func firstMessage(_ subscription: RedisSubscription, within timeout: Duration = .seconds(5)) async -> RedisMessage? {
    await withTaskGroup(of: RedisMessage?.self) { group in
        group.addTask {
            for await message in subscription { return message }
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// A delayed message for tests.
func sampleMessage(_ id: String, retries: Int = 1) throws -> DelayedMessage {
    try DelayedMessage(
        envelope: TaskEnvelope(id: id, task: "examples.add", kwargs: ["a": 2, "b": 3], retries: retries),
        queue: "celery")
}
