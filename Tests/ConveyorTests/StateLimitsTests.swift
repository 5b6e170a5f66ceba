import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

/// The claim script's rate limit and concurrency cap, and the park, release and renew scripts, driven with
/// explicit times against the real Redis.
@Suite("State: rate limits and concurrency caps in the claim")
struct StateLimitsTests {
    static let message = DelayedMessage(routingKey: "celery", headers: ["task": .string("examples.add")], body: [])

    func claim(
        _ f: StateFixture, _ id: String, now: Int64, limits: ClaimLimits, worker: String = "w1",
        lease: Duration = .seconds(30)
    ) async throws -> ClaimOutcome {
        try await f.store.claim(
            id, worker: worker, name: "examples.add", queue: "celery", lease: lease, maxAttempts: 5, limits: limits,
            now: now)
    }

    @Test("20/s: each claim gets the next 50 ms slot; a throttled task keeps its slot and is never counted twice")
    func gcraSlots() async throws {
        try await StateFixture.with("rate-slots") { f in
            let limits = ClaimLimits(rate: try RateLimit("20/s"))
            let t0 = StateFixture.t0
            let ids = (0..<4).map { _ in f.newID() }
            #expect(try await claim(f, ids[0], now: t0, limits: limits).token != nil)
            #expect(try await claim(f, ids[1], now: t0, limits: limits) == .throttled(untilMs: t0 + 50))
            // The same message again (a redelivery, the worker died before parking it): the same slot, no new one.
            #expect(try await claim(f, ids[1], now: t0 + 10, limits: limits) == .throttled(untilMs: t0 + 50))
            #expect(try await claim(f, ids[2], now: t0 + 10, limits: limits) == .throttled(untilMs: t0 + 100))
            // At its slot it runs without being counted again: the next new task still gets t0 + 150.
            #expect(try await claim(f, ids[1], now: t0 + 50, limits: limits).token != nil)
            #expect(try await claim(f, ids[3], now: t0 + 50, limits: limits) == .throttled(untilMs: t0 + 150))
            // A finished task's redelivery is not counted either.
            let token = try #require(try await claim(f, ids[2], now: t0 + 100, limits: limits).token)
            _ = try await f.store.finish(ids[2], token: token, outcome: .success(json: Array("1".utf8)), now: t0 + 101)
            #expect(try await claim(f, ids[2], now: t0 + 102, limits: limits) == .alreadyFinished(.success))
            let another = f.newID()
            #expect(try await claim(f, another, now: t0 + 102, limits: limits) == .throttled(untilMs: t0 + 200))
        }
    }

    @Test("a limit far above the load never binds, even for claims in the same millisecond")
    func nonBinding() async throws {
        try await StateFixture.with("rate-loose") { f in
            let limits = ClaimLimits(rate: try RateLimit("1000000/s"))
            for _ in 0..<50 {
                #expect(try await claim(f, f.newID(), now: StateFixture.t0, limits: limits).token != nil)
            }
            // The thousandth claim within one millisecond would wait for the next one.
            let stored = try await f.client.send(RedisCommand("HGET", f.keys.rate(task: "examples.add"), "tat")).string
            #expect(stored == "\(StateFixture.t0).050")
        }
    }

    @Test("tasks back late and together run only as far as the spacing allows; the rest take the next slots")
    func lateReturnsDoNotBunch() async throws {
        try await StateFixture.with("rate-late") { f in
            let limits = ClaimLimits(rate: try RateLimit("20/s"), catchUpMs: 250)
            let t0 = StateFixture.t0
            let ids = (0..<10).map { _ in f.newID() }
            #expect(try await claim(f, ids[0], now: t0, limits: limits).token != nil)
            for (index, id) in ids.enumerated().dropFirst() {
                #expect(try await claim(f, id, now: t0, limits: limits) == .throttled(untilMs: t0 + 50 * Int64(index)))
            }
            // All nine come back together at t0 + 1000 (a backlog held them up): 1 + 250 ms / 50 ms run at once,
            // the others take new slots after those runs.
            var outcomes: [ClaimOutcome] = []
            for id in ids.dropFirst() { outcomes.append(try await claim(f, id, now: t0 + 1_000, limits: limits)) }
            #expect(outcomes.prefix(6).allSatisfy { $0.token != nil })
            #expect(
                Array(outcomes.dropFirst(6))
                    == [
                        .throttled(untilMs: t0 + 1_300), .throttled(untilMs: t0 + 1_350),
                        .throttled(untilMs: t0 + 1_400),
                    ])
            // They keep their new slots, after the runs that happened, and run at them.
            #expect(try await claim(f, ids[8], now: t0 + 1_060, limits: limits) == .throttled(untilMs: t0 + 1_350))
            #expect(try await claim(f, ids[7], now: t0 + 1_300, limits: limits).token != nil)
            // A new task while the runs are behind their schedule (returns are late) uses the idle capacity.
            #expect(try await claim(f, f.newID(), now: t0 + 1_400, limits: limits).token != nil)
        }
    }

    @Test("a per-key limit keeps keys apart; a burst lets that many through at once")
    func perKeyAndBurst() async throws {
        try await StateFixture.with("rate-keys") { f in
            let t0 = StateFixture.t0
            let rate = try RateLimit("1/s", burst: 2)
            let a = ClaimLimits(rate: rate, rateKey: "customer-a")
            let b = ClaimLimits(rate: rate, rateKey: "customer-b")
            #expect(try await claim(f, f.newID(), now: t0, limits: a).token != nil)
            #expect(try await claim(f, f.newID(), now: t0, limits: a).token != nil)
            #expect(try await claim(f, f.newID(), now: t0, limits: a) == .throttled(untilMs: t0 + 1_000))
            #expect(try await claim(f, f.newID(), now: t0, limits: b).token != nil)
            #expect(try await claim(f, f.newID(), now: t0, limits: b).token != nil)
            let stored = try await f.client.send(
                RedisCommand("HGET", f.keys.rate(task: "examples.add", key: "customer-a"), "tat"))
            #expect(stored.string.flatMap(Double.init) == Double(t0 + 3_000))
        }
    }

    @Test("maxRunning 2: a third claim is capped until a holder releases or its slot lapses")
    func capHoldersAndLapse() async throws {
        try await StateFixture.with("cap") { f in
            let t0 = StateFixture.t0
            let limits = ClaimLimits(maxRunning: 2, pool: "gpu")
            let ids = (0..<4).map { _ in f.newID() }
            let first = try #require(try await claim(f, ids[0], now: t0, limits: limits, lease: .seconds(2)).token)
            #expect(try await claim(f, ids[1], now: t0 + 100, limits: limits, lease: .seconds(2)).token != nil)
            #expect(try await claim(f, ids[2], now: t0 + 200, limits: limits) == .capped(firstExpiryMs: t0 + 2_000))

            // Parked as a waiter; a release makes it due at once.
            let due = try await f.store.park(
                ids[2], dueMs: t0 + 2_000, message: Self.message, cap: ("gpu", 2), now: t0 + 200)
            #expect(due == t0 + 2_000)
            #expect(try await f.client.send(RedisCommand("ZCARD", f.keys.capWaiting(pool: "gpu"))).int == 1)
            _ = try await f.store.finish(ids[0], token: first, outcome: .success(json: Array("1".utf8)), now: t0 + 300)
            #expect(try await f.store.releaseSlot(ids[0], token: first, pool: "gpu", maxRunning: 2, now: t0 + 300) == 1)
            #expect(try await f.client.send(RedisCommand("ZSCORE", f.keys.delayed, ids[2])).double == Double(t0 + 300))
            #expect(try await f.client.send(RedisCommand("ZCARD", f.keys.capWaiting(pool: "gpu"))).int == 0)
            let third = try await claim(f, ids[2], now: t0 + 310, limits: limits, lease: .seconds(2))
            #expect(third.token != nil)

            // Holders: ids[1] (until t0 + 2100) and ids[2] (until t0 + 2310). Renewing extends only held slots.
            let renewed = try await f.store.renewSlots(
                [("gpu", ids[1]), ("gpu", ids[2]), ("gpu", ids[0])], lease: .seconds(2), now: t0 + 500)
            #expect(renewed == 2)
            #expect(try await claim(f, ids[3], now: t0 + 2_400, limits: limits) == .capped(firstExpiryMs: t0 + 2_500))
            // Nobody renews them again (their workers died): once their slots lapse, the capacity is back.
            #expect(try await claim(f, ids[3], now: t0 + 2_501, limits: limits).token != nil)
        }
    }

    @Test("a release by a run that lost its lease frees nothing; a capped claim uses no rate slot")
    func releaseFencedAndOrder() async throws {
        try await StateFixture.with("cap-fence") { f in
            let t0 = StateFixture.t0
            let limits = ClaimLimits(rate: try RateLimit("10/s"), maxRunning: 1)
            let id = f.newID()
            let old = try #require(try await claim(f, id, now: t0, limits: limits, lease: .seconds(1)).token)
            // The lease ran out; another worker claims the task again (its rate slot came 100 ms later).
            let outcome = try await claim(f, id, now: t0 + 1_500, limits: limits, worker: "w2", lease: .seconds(1))
            let new = try #require(outcome.token)
            #expect(new != old)
            #expect(
                try await f.store.releaseSlot(id, token: old, pool: "examples.add", maxRunning: 1, now: t0 + 1_600) == 0
            )
            #expect(try await f.client.send(RedisCommand("ZSCORE", f.keys.cap(pool: "examples.add"), id)).double != nil)
            // Capped before the rate limit is consulted: the rate key's time does not move.
            let before = try await f.client.send(RedisCommand("HGETALL", f.keys.rate(task: "examples.add")))
            #expect(
                try await claim(f, f.newID(), now: t0 + 1_600, limits: limits) == .capped(firstExpiryMs: t0 + 2_500))
            #expect(try await f.client.send(RedisCommand("HGETALL", f.keys.rate(task: "examples.add"))) == before)
            #expect(
                try await f.store.releaseSlot(id, token: new, pool: "examples.add", maxRunning: 1, now: t0 + 1_700) == 0
            )
            #expect(try await f.client.send(RedisCommand("ZCARD", f.keys.cap(pool: "examples.add"))).int == 0)
        }
    }

    @Test("park with a free slot makes the task due at once instead of waiting")
    func parkWithFreeSlot() async throws {
        try await StateFixture.with("cap-park") { f in
            let id = f.newID()
            let due = try await f.store.park(
                id, dueMs: StateFixture.t0 + 5_000, message: Self.message, cap: ("pool", 1), now: StateFixture.t0)
            #expect(due == StateFixture.t0)
            #expect(try await f.client.send(RedisCommand("ZCARD", f.keys.capWaiting(pool: "pool"))).int == 0)
        }
    }
}
