import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("TaskStore claim")
struct StateClaimTests {
    @Test("a fresh task is claimed to run: STARTED, leased, indexed")
    func claimRuns() async throws {
        try await StateFixture.with("claim-run") { f in
            let id = f.newID()
            let outcome = try await f.claim(id, worker: "w1", lease: .seconds(30))
            guard case .run(let token, let attempt) = outcome else {
                Issue.record("expected .run, got \(outcome)")
                return
            }
            #expect(token > 0)
            #expect(attempt == 1)
            let status = try await f.store.status(id)
            #expect(status.state == .started)
            #expect(status.source == .taskRecord)
            #expect(status.name == "examples.add")
            #expect(status.queue == "celery")
            #expect(status.worker == "w1")
            #expect(status.attempts == 1)
            #expect(status.startedMs == StateFixture.t0)
            #expect(status.receivedMs == StateFixture.t0)
            #expect(status.leaseOwner == "w1")
            #expect(status.leaseUntilMs == StateFixture.t0 + 30_000)
            #expect(try await f.store.list(state: .started).map(\.id) == [id])
            // Running is not ready: Celery's meta is not written at claim.
            #expect(try await f.store.resultMeta(id) == nil)
            let ttl = try await f.client.send(RedisCommand("TTL", f.keys.task(id))).int ?? -1
            #expect(ttl > 0 && ttl <= 86_400)
        }
    }

    @Test("a second claim while the lease lives is leasedElsewhere, and changes nothing")
    func leasedElsewhere() async throws {
        try await StateFixture.with("claim-leased") { f in
            let id = f.newID()
            _ = try await f.run(id, worker: "w1", now: StateFixture.t0, lease: .seconds(30))
            let second = try await f.claim(id, worker: "w2", now: StateFixture.t0 + 1_000)
            #expect(second == .leasedElsewhere(owner: "w1", untilMs: StateFixture.t0 + 30_000))
            let status = try await f.store.status(id)
            #expect(status.attempts == 1)
            #expect(status.worker == "w1")
        }
    }

    @Test("after the lease expires another worker claims with a higher token; the first worker is fenced")
    func takeoverFencesTheFirstWorker() async throws {
        try await StateFixture.with("claim-fence") { f in
            let id = f.newID()
            let first = try await f.run(id, worker: "w1", now: StateFixture.t0, lease: .seconds(10))
            let later = StateFixture.t0 + 10_001
            let outcome = try await f.claim(id, worker: "w2", now: later, lease: .seconds(10))
            guard case .run(let second, let attempt) = outcome else {
                Issue.record("expected .run, got \(outcome)")
                return
            }
            #expect(second > first)
            #expect(attempt == 2)
            // The first worker comes back from a long pause: every write of its is refused.
            #expect(try await f.store.finish(id, token: first, outcome: .success(5), now: later + 1) == .fenced)
            #expect(
                try await f.store.progress(id, token: first, TaskProgress(fraction: 0.5), now: later + 1) == .fenced)
            #expect(try await f.store.resultMeta(id) == nil)
            #expect(try await f.store.status(id).state == .started)
            #expect(try await f.store.finish(id, token: second, outcome: .success(7), now: later + 2) == .recorded)
            #expect(try await f.store.resultMeta(id)?.result == 7)
            // Once recorded, even the current token cannot write again.
            #expect(try await f.store.finish(id, token: second, outcome: .success(8), now: later + 3) == .fenced)
            #expect(try await f.store.resultMeta(id)?.result == 7)
        }
    }

    @Test("a finished task is alreadyFinished")
    func alreadyFinished() async throws {
        try await StateFixture.with("claim-finished") { f in
            let id = f.newID()
            let token = try await f.run(id)
            #expect(
                try await f.store.finish(id, token: token, outcome: .success(1), now: StateFixture.t0 + 5) == .recorded)
            #expect(try await f.claim(id, worker: "w2", now: StateFixture.t0 + 60_000) == .alreadyFinished(.success))
            let failed = f.newID()
            let failedToken = try await f.run(failed)
            _ = try await f.store.finish(
                failed, token: failedToken, outcome: .failure(TaskFailure(type: "E", message: "m")),
                now: StateFixture.t0 + 5)
            #expect(try await f.claim(failed, now: StateFixture.t0 + 60_000) == .alreadyFinished(.failure))
        }
    }

    @Test("a tombstone revokes at claim: REVOKED with the reason, Celery meta TaskRevokedError")
    func tombstoneRevokes() async throws {
        try await StateFixture.with("claim-revoked") { f in
            let id = f.newID()
            // Revoked while running: only the tombstone is written, the worker stops it.
            _ = try await f.run(id, worker: "w1", now: StateFixture.t0, lease: .seconds(10))
            #expect(
                try await f.store.revoke(id, reason: "user asked", now: StateFixture.t0 + 1) == .running(worker: "w1"))
            #expect(try await f.store.status(id).state == .started)
            #expect(try await f.store.revocationReason(id) == "user asked")
            // A duplicate delivery while the run lives leaves the decision to the running worker.
            #expect(
                try await f.claim(id, worker: "w2", now: StateFixture.t0 + 2)
                    == .leasedElsewhere(owner: "w1", untilMs: StateFixture.t0 + 10_000))
            // The worker died instead; the message is redelivered after its lease.
            let outcome = try await f.claim(id, worker: "w2", now: StateFixture.t0 + 20_000)
            #expect(outcome == .revoked(reason: "user asked"))
            let status = try await f.store.status(id)
            #expect(status.state == .revoked)
            #expect(status.reason == "user asked")
            #expect(status.leaseOwner == nil)
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.status == "REVOKED")
            #expect(meta.failure == TaskFailure(type: "TaskRevokedError", message: "user asked"))
            #expect(meta.result.objectField("exc_module") == "celery.exceptions")
            #expect(meta.dateDone == MillisecondClock.iso(StateFixture.t0 + 20_000))
            #expect(try await f.store.list(state: .revoked).map(\.id) == [id])
            #expect(try await f.store.list(state: .started).isEmpty)
        }
    }

    @Test("a tombstone written by another client, with no task record, revokes at claim")
    func bareTombstone() async throws {
        try await StateFixture.with("claim-bare-tomb") { f in
            let id = f.newID()
            _ = try await f.client.set(f.keys.revoked(id), to: "from python")
            #expect(try await f.claim(id) == .revoked(reason: "from python"))
            #expect(try await f.store.status(id).state == .revoked)
            #expect(try await f.store.resultMeta(id)?.state == .revoked)
        }
    }

    @Test("expires in the past: REVOKED with reason expired")
    func expired() async throws {
        try await StateFixture.with("claim-expired") { f in
            let id = f.newID()
            #expect(try await f.claim(id, now: StateFixture.t0, expiresMs: StateFixture.t0 - 1) == .expired)
            let status = try await f.store.status(id)
            #expect(status.state == .revoked)
            #expect(status.reason == "expired")
            #expect(status.name == "examples.add")
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.failure == TaskFailure(type: "TaskRevokedError", message: "expired"))
            // An expiry in the future does not stop it.
            let other = f.newID()
            if case .run = try await f.claim(other, now: StateFixture.t0, expiresMs: StateFixture.t0 + 1) {
            } else {
                Issue.record("a task expiring later must run")
            }
        }
    }

    @Test("claims beyond maxAttempts without an outcome are poison: FAILURE, dead-letter")
    func poison() async throws {
        try await StateFixture.with("claim-poison") { f in
            let id = f.newID()
            var now = StateFixture.t0
            for attempt in 1...2 {
                let outcome = try await f.claim(id, worker: "w\(attempt)", now: now, lease: .seconds(1), maxAttempts: 2)
                guard case .run(_, let got) = outcome else {
                    Issue.record("attempt \(attempt): expected .run, got \(outcome)")
                    return
                }
                #expect(got == attempt)
                now += 1_001  // the worker died: its lease runs out
            }
            #expect(try await f.claim(id, worker: "w3", now: now, maxAttempts: 2) == .poison(attempts: 3))
            let status = try await f.store.status(id)
            #expect(status.state == .failure)
            #expect(status.reason == "poison")
            #expect(status.error?.type == TaskFailure.poisonType)
            #expect(status.error?.message.contains("limit 2") == true)
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.status == "FAILURE")
            #expect(meta.failure?.type == "PoisonMessage")
            #expect(meta.result.objectField("exc_module") == "conveyor")
        }
    }

    @Test("claims that ended in a RETRY do not count toward the poison limit")
    func retriesAreNotPoison() async throws {
        try await StateFixture.with("claim-retry-count") { f in
            let id = f.newID()
            var now = StateFixture.t0
            for round in 0..<3 {
                let token = try await f.run(id, worker: "w", now: now)
                let outcome = try await f.store.retry(
                    id, token: token, error: TaskFailure(type: "Flaky", message: "round \(round)"), dueMs: now + 10,
                    message: sampleMessage(id, retries: round + 1), now: now + 1)
                #expect(outcome == .scheduled(retries: round + 1))
                now += 100
            }
            let outcome = try await f.claim(id, worker: "w", now: now, maxAttempts: 1)
            #expect(outcome == .run(token: try #require(outcome.token), attempt: 4))
        }
    }
}

extension ClaimOutcome {
    var token: Int64? {
        if case .run(let token, _) = self { return token }
        return nil
    }
}

extension JSONValue {
    func objectField(_ name: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[name] }
        return nil
    }
}
