import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("TaskStore idempotency keys")
struct StateIdempotencyTests {
    @Test("reserve, pending for others, takeover with the same id after the pending time, confirm, release")
    func lifecycle() async throws {
        try await StateFixture.with("idem") { f in
            let t0 = StateFixture.t0
            let key = f.keys.idempotency("order-1")
            let first = try await f.store.reserveIdempotencyKey(
                "order-1", candidate: "task-a", pending: .seconds(10), ttl: .seconds(3_600), now: t0)
            #expect(first == .reserved(id: "task-a"))
            #expect(try await f.client.send(RedisCommand("GET", key)).string == "pending:\(t0 + 10_000):task-a")
            let ttl = try await f.client.send(RedisCommand("PTTL", key)).int ?? 0
            #expect(ttl > 3_500_000 && ttl <= 3_600_000)

            let other = try await f.store.reserveIdempotencyKey(
                "order-1", candidate: "task-b", pending: .seconds(10), ttl: .seconds(3_600), now: t0 + 5_000)
            #expect(other == .pending(id: "task-a", untilMs: t0 + 10_000))
            #expect(try await f.store.idempotencyTaskID("order-1") == "task-a")

            let takeover = try await f.store.reserveIdempotencyKey(
                "order-1", candidate: "task-c", pending: .seconds(10), ttl: .seconds(3_600), now: t0 + 10_000)
            #expect(takeover == .reserved(id: "task-a"), "a lapsed reservation is taken over with its id")
            #expect(try await f.client.send(RedisCommand("GET", key)).string == "pending:\(t0 + 20_000):task-a")
            #expect(
                try await f.client.send(RedisCommand("PTTL", key)).int ?? 0 > 3_500_000, "the takeover keeps the TTL")

            // Only a pending reservation with the caller's id is released.
            #expect(try await f.store.releaseIdempotencyKey("order-1", id: "task-c") == false)
            try await f.store.confirmIdempotencyKey("order-1", id: "task-a", ttl: .seconds(7_200))
            #expect(try await f.client.send(RedisCommand("GET", key)).string == "confirmed:task-a")
            #expect(try await f.client.send(RedisCommand("PTTL", key)).int ?? 0 > 7_000_000, "TTL from the confirm")
            #expect(try await f.store.releaseIdempotencyKey("order-1", id: "task-a") == false, "confirmed stays")
            let again = try await f.store.reserveIdempotencyKey(
                "order-1", candidate: "task-d", pending: .seconds(10), ttl: .seconds(3_600), now: t0 + 99_000)
            #expect(again == .confirmed(id: "task-a"))

            _ = try await f.store.reserveIdempotencyKey(
                "order-2", candidate: "task-e", pending: .seconds(10), ttl: .seconds(60), now: t0)
            #expect(try await f.store.releaseIdempotencyKey("order-2", id: "task-e"))
            #expect(try await f.store.idempotencyTaskID("order-2") == nil)
        }
    }

    @Test("a batch reserves new keys and reports confirmed and pending ones, like one call per key")
    func batch() async throws {
        try await StateFixture.with("idem-batch") { f in
            let t0 = StateFixture.t0
            _ = try await f.store.reserveIdempotencyKey(
                "k-pending", candidate: "id-p", pending: .seconds(10), ttl: .seconds(60), now: t0)
            _ = try await f.store.reserveIdempotencyKey(
                "k-done", candidate: "id-d", pending: .seconds(10), ttl: .seconds(60), now: t0)
            try await f.store.confirmIdempotencyKeys([("k-done", "id-d")], ttl: .seconds(60))
            let count = TaskStore.idempotencyChunk + 3
            var requests = [("k-pending", "x1"), ("k-done", "x2")]
            requests += (0..<count).map { ("k-new-\($0)", "new:\($0)") }
            let reservations = try await f.store.reserveIdempotencyKeys(
                requests.map { (key: $0.0, candidate: $0.1) }, pending: .seconds(10), ttl: .seconds(60), now: t0 + 1)
            #expect(reservations.count == requests.count)
            #expect(reservations.first == .pending(id: "id-p", untilMs: t0 + 10_000))
            #expect(reservations.dropFirst().first == .confirmed(id: "id-d"))
            #expect(reservations.dropFirst(2) == ArraySlice((0..<count).map { .reserved(id: "new:\($0)") }))
            try await f.store.confirmIdempotencyKeys(
                (0..<count).map { (key: "k-new-\($0)", id: "new:\($0)") }, ttl: .seconds(60))
            #expect(try await f.store.idempotencyTaskID("k-new-\(count - 1)") == "new:\(count - 1)")
            let reread = try await f.store.reserveIdempotencyKeys(
                [(key: "k-new-0", candidate: "y")], pending: .seconds(10), ttl: .seconds(60), now: t0 + 2)
            #expect(reread == [.confirmed(id: "new:0")], "an id with a colon survives the string form")
        }
    }

    @Test("a key that holds something else is an error, not a silent reservation")
    func foreignValue() async throws {
        try await StateFixture.with("idem-foreign") { f in
            _ = try await f.client.send(RedisCommand("SET", f.keys.idempotency("odd"), "garbage"))
            await #expect(throws: (any Error).self) {
                try await f.store.reserveIdempotencyKey(
                    "odd", candidate: "z", pending: .seconds(10), ttl: .seconds(60), now: StateFixture.t0)
            }
            #expect(try await f.client.send(RedisCommand("GET", f.keys.idempotency("odd"))).string == "garbage")
        }
    }

    @Test("idempotency values parse: confirmed, pending with its time, ids with colons, and nothing else")
    func parse() {
        #expect(TaskStore.idempotencyRecord("confirmed:abc")?.id == "abc")
        #expect(TaskStore.idempotencyRecord("confirmed:abc")?.pendingUntilMs == nil)
        #expect(TaskStore.idempotencyRecord("pending:123:a:b")?.id == "a:b")
        #expect(TaskStore.idempotencyRecord("pending:123:a:b")?.pendingUntilMs == 123)
        for bad in ["", "confirmed:", "pending:12:", "pending:x:id", "pending:", "id"] {
            #expect(TaskStore.idempotencyRecord(bad) == nil, "\(bad)")
        }
    }
}
