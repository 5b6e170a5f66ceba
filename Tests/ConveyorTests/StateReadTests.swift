import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("TaskStore reads, leases and heartbeats")
struct StateReadTests {
    @Test("status of an unknown id is PENDING, as in Celery")
    func unknownIsPending() async throws {
        try await StateFixture.with("pending") { f in
            let status = try await f.store.status(f.newID())
            #expect(status.state == .pending)
            #expect(status.source == .none)
            #expect(status.attempts == 0)
        }
    }

    @Test("a task only Celery wrote is read from its result meta")
    func celeryOnlyStatus() async throws {
        try await StateFixture.with("celery-only") { f in
            let id = f.newID()
            let meta = CeleryResultMeta(
                taskID: id, status: "FAILURE",
                result: CeleryResultMeta.exceptionResult(TaskFailure(type: "MyErr", message: "boom"), module: "tasks"),
                traceback: "Traceback…", dateDone: "2026-11-22T06:08:03.801056+00:00")
            _ = try await f.client.set(f.keys.result(id), to: meta.jsonBytes())
            let status = try await f.store.status(id)
            #expect(status.source == .celeryResult)
            #expect(status.state == .failure)
            #expect(status.error == TaskFailure(type: "MyErr", message: "boom"))
            #expect(
                status.finishedMs
                    == MillisecondClock.milliseconds(try #require(CeleryDate.parse("2026-11-22T06:08:03.801056+00:00")))
            )
        }
    }

    @Test("list(state:) is newest first and honours the limit")
    func listOrderAndLimit() async throws {
        try await StateFixture.with("list") { f in
            var ids: [String] = []
            for index in 0..<5 {
                let id = f.newID()
                ids.append(id)
                let token = try await f.run(id, now: StateFixture.t0 + Int64(index))
                _ = try await f.store.finish(
                    id, token: token, outcome: .success(nil), now: StateFixture.t0 + Int64(100 + index))
            }
            let all = try await f.store.list(state: .success, limit: 10)
            #expect(all.map(\.id) == ids.reversed())
            #expect(all.first?.enteredMs == StateFixture.t0 + 104)
            #expect(try await f.store.list(state: .success, limit: 2).map(\.id) == Array(ids.reversed().prefix(2)))
            #expect(try await f.store.list(state: .success, limit: 0).isEmpty)
            #expect(try await f.store.count(state: .success) == 5)
            #expect(try await f.store.list(state: .started).isEmpty)
        }
    }

    @Test("renewLeases extends only the worker's own leases and reports lost and revoked ids")
    func renewLeases() async throws {
        try await StateFixture.with("renew") { f in
            let mine = f.newID()
            let revoked = f.newID()
            let theirs = f.newID()
            _ = try await f.run(mine, worker: "w1", lease: .seconds(10))
            _ = try await f.run(revoked, worker: "w1", lease: .seconds(10))
            _ = try await f.run(theirs, worker: "w2", lease: .seconds(10))
            #expect(try await f.store.revoke(revoked, now: StateFixture.t0 + 1) == .running(worker: "w1"))
            let renewal = try await f.store.renewLeases(
                worker: "w1", ids: [mine, revoked, theirs], lease: .seconds(10), now: StateFixture.t0 + 9_000)
            #expect(renewal.renewed == [mine, revoked])
            #expect(renewal.lost == [theirs])
            #expect(renewal.revoked == [revoked])
            #expect(try await f.store.status(mine).leaseUntilMs == StateFixture.t0 + 19_000)
            #expect(try await f.store.status(theirs).leaseUntilMs == StateFixture.t0 + 10_000)
            // Renewed, the lease holds past its first expiry.
            #expect(
                try await f.claim(mine, worker: "w3", now: StateFixture.t0 + 15_000)
                    == .leasedElsewhere(owner: "w1", untilMs: StateFixture.t0 + 19_000))
        }
    }

    @Test("heartbeat writes the worker record and renews its leases; workers() reads it back")
    func heartbeat() async throws {
        try await StateFixture.with("heartbeat") { f in
            let id = f.newID()
            _ = try await f.run(id, worker: "host-1:42:abc", lease: .seconds(10))
            let record = WorkerRecord(
                id: "host-1:42:abc", host: "host-1", pid: 42, queues: ["celery", "images"], slots: 8, running: [id],
                startedMs: StateFixture.t0 - 60_000)
            let renewal = try await f.store.heartbeat(
                record, lease: .seconds(10), expireAfter: .seconds(15), now: StateFixture.t0 + 5_000)
            #expect(renewal.renewed == [id])
            #expect(try await f.store.status(id).leaseUntilMs == StateFixture.t0 + 15_000)
            let workers = try await f.store.workers()
            var expected = record
            expected.lastBeatMs = StateFixture.t0 + 5_000
            #expect(workers == [expected])
            let ttl = try await f.client.send(RedisCommand("PTTL", f.keys.worker(record.id))).int ?? -1
            #expect(ttl > 0 && ttl <= 15_000)
            try await f.store.removeWorker(record.id)
            #expect(try await f.store.workers().isEmpty)
        }
    }
}
