import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("TaskStore retry and the delay set")
struct StateDelayedTests {
    @Test("retry: RETRY state and meta, lease released, message scheduled; promote, ack, run again")
    func retrySchedules() async throws {
        try await StateFixture.with("retry") { f in
            let id = f.newID()
            let channel = try await f.client.subscriber.subscribe([f.keys.result(id)])
            let token = try await f.run(id)
            let due = StateFixture.t0 + 5_000
            let message = try sampleMessage(id, retries: 1)
            let error = TaskFailure(type: "Timeout", message: "upstream slow")
            let outcome = try await f.store.retry(
                id, token: token, error: error, dueMs: due, message: message, now: StateFixture.t0 + 100)
            #expect(outcome == .scheduled(retries: 1))

            let status = try await f.store.status(id)
            #expect(status.state == .retry)
            #expect(status.retries == 1)
            #expect(status.error == error)
            #expect(status.leaseOwner == nil)
            #expect(try await f.store.scheduledTime(id) == due)
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.status == "RETRY")
            #expect(meta.failure == error)
            #expect(meta.dateDone == nil)
            #expect(try await firstMessage(channel).map { try CeleryResultMeta(json: $0.payload).status } == "RETRY")
            // The old token is spent.
            #expect(try await f.store.finish(id, token: token, outcome: .success(1)) == .fenced)

            #expect(try await f.store.promoteDue(now: due - 1).isEmpty)
            let promoted = try await f.store.promoteDue(limit: 10, lease: .seconds(30), now: due)
            #expect(promoted.map(\.id) == [id])
            #expect(promoted.first?.message == message)
            #expect(try promoted.first?.message.envelope().retries == 1)
            #expect(try await f.store.ackPromoted([id]) == 1)
            #expect(try await f.store.promoteDue(now: due + 3_600_000).isEmpty)
            #expect(try await f.client.hget(f.keys.delayedMessages, field: id) == nil)

            let again = try await f.claim(id, worker: "w2", now: due + 10)
            #expect(again == .run(token: try #require(again.token), attempt: 2))
            #expect(try #require(again.token) > token)
            #expect(try await f.store.list(state: .retry).isEmpty)
        }
    }

    @Test("promoteDue says when the next message (or an unacknowledged promotion's lease) is due")
    func nextDue() async throws {
        try await StateFixture.with("next-due") { f in
            let t0 = StateFixture.t0
            let (early, late) = (f.newID(), f.newID())
            #expect(try await f.store.promoteDueBatch(now: t0).nextDue == nil)
            try await f.store.schedule(early, dueMs: t0 + 500, message: sampleMessage(early))
            try await f.store.schedule(late, dueMs: t0 + 900, message: sampleMessage(late))
            let none = try await f.store.promoteDueBatch(lease: .seconds(10), now: t0)
            #expect(none.messages.isEmpty)
            #expect(none.nextDue == .milliseconds(500))
            let first = try await f.store.promoteDueBatch(lease: .seconds(10), now: t0 + 500)
            #expect(first.messages.map(\.id) == [early])
            #expect(first.nextDue == .milliseconds(400))
            let second = try await f.store.promoteDueBatch(lease: .seconds(10), now: t0 + 900)
            #expect(second.messages.map(\.id) == [late])
            #expect(second.nextDue == .milliseconds(9_600), "the first promotion's lease, should it never be acked")
            try await f.store.ackPromoted([early, late])
            #expect(try await f.store.promoteDueBatch(now: t0 + 1_000).nextDue == nil)
        }
    }

    @Test("a promoter that dies before acking loses nothing: the id is promoted again after the lease")
    func promoterDies() async throws {
        try await StateFixture.with("promoter-dies") { f in
            let ids = (0..<3).map { _ in f.newID() }
            for (index, id) in ids.enumerated() {
                try await f.store.schedule(id, dueMs: StateFixture.t0 + Int64(index), message: sampleMessage(id))
            }
            let first = try await f.store.promoteDue(limit: 2, lease: .seconds(10), now: StateFixture.t0 + 100)
            #expect(first.map(\.id) == Array(ids.prefix(2)))
            // The promoter "dies" here: it never acks. While its lease lives, nobody else takes those two.
            let meanwhile = try await f.store.promoteDue(limit: 10, lease: .seconds(10), now: StateFixture.t0 + 5_000)
            #expect(meanwhile.map(\.id) == [ids[2]])
            // After the lease they are handed out again, with their messages intact.
            let retried = try await f.store.promoteDue(limit: 10, lease: .seconds(10), now: StateFixture.t0 + 10_101)
            #expect(Set(retried.map(\.id)) == Set(ids.prefix(2)))
            #expect(try retried.allSatisfy { try $0.message == sampleMessage($0.id) })
            #expect(try await f.store.ackPromoted(ids) == 3)
            #expect(try await f.store.promoteDue(now: StateFixture.t0 + 1_000_000).isEmpty)
            let left = try await f.client.send(
                RedisCommand("EXISTS", f.keys.delayed, f.keys.delayedMessages, f.keys.delayedInFlight))
            #expect(left.int == 0)
        }
    }

    @Test("an ack arriving after the task was scheduled again keeps the new message")
    func ackAfterReschedule() async throws {
        try await StateFixture.with("ack-race") { f in
            let id = f.newID()
            try await f.store.schedule(id, dueMs: StateFixture.t0, message: sampleMessage(id, retries: 1))
            #expect(try await f.store.promoteDue(now: StateFixture.t0).map(\.id) == [id])
            // The published message ran and failed again before the promoter acked.
            let token = try await f.run(id, now: StateFixture.t0 + 1)
            _ = try await f.store.retry(
                id, token: token, error: TaskFailure(type: "E", message: "again"), dueMs: StateFixture.t0 + 1_000,
                message: sampleMessage(id, retries: 2), now: StateFixture.t0 + 2)
            #expect(try await f.store.ackPromoted([id]) == 0)
            let promoted = try await f.store.promoteDue(now: StateFixture.t0 + 1_000)
            #expect(promoted.map(\.id) == [id])
            #expect(try promoted.first?.message.envelope().retries == 2)
        }
    }

    @Test("a stored message that does not parse is dropped, the others still come out")
    func unreadableMessage() async throws {
        try await StateFixture.with("delayed-bad") { f in
            let good = f.newID()
            try await f.store.schedule(good, dueMs: StateFixture.t0, message: sampleMessage(good))
            _ = try await f.client.send(RedisCommand("ZADD", f.keys.delayed, StateFixture.t0, "bad"))
            _ = try await f.client.send(RedisCommand("HSET", f.keys.delayedMessages, "bad", "{not json"))
            #expect(try await f.store.promoteDue(now: StateFixture.t0).map(\.id) == [good])
            #expect(try await f.client.hget(f.keys.delayedMessages, field: "bad") == nil)
        }
    }
}
