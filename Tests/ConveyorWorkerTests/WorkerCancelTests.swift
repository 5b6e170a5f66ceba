import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Cancelling tasks")
struct WorkerCancelTests {
    @Test("a queued task cancelled before any worker runs never runs; the tombstone outlives the missing worker")
    func queuedNeverRuns() async throws {
        try await WorkerFixture.with("cancel-queued") { f in
            let list = f.prefix + "runs"
            let cancelled = try await f.client.submit(
                Examples.Record.self, .init(key: list, token: "no"), options: .init(queue: f.queue))
            #expect(try await f.client.cancel(cancelled.id, reason: "changed my mind") == .revoked)
            #expect(try await cancelled.status().state == .revoked)
            await #expect(throws: ConveyorError.revoked(id: cancelled.id, reason: "changed my mind")) {
                _ = try await cancelled.get(timeout: .seconds(5))
            }
            // A worker started afterwards skips it; a task behind it shows the worker got that far.
            try await f.withWorker(f.workerConfiguration(concurrency: 1)) { _ in
                let marker = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "yes"), options: .init(queue: f.queue))
                #expect(try await marker.get(timeout: .seconds(10)) == "yes")
                let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
                #expect(runs == [marker.id])
                #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
            }
            #expect(try await cancelled.status().state == .revoked)
        }
    }

    @Test("a delayed task is taken out of the delay set and never runs")
    func delayedNeverRuns() async throws {
        try await WorkerFixture.with("cancel-delayed") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 1, b: 1), options: .init(queue: f.queue, countdown: 60))
                try await eventually("parked in the delay set") { try await f.store.scheduledTime(ref.id) != nil }
                #expect(try await f.client.cancel(ref.id) == .revoked)
                #expect(try await f.store.scheduledTime(ref.id) == nil)
                #expect(try await ref.status().state == .revoked)
            }
        }
    }

    @Test("a running task's Swift task is cancelled at once, not at the next heartbeat, and the task ends REVOKED")
    func runningIsStopped() async throws {
        try await WorkerFixture.with("cancel-running") { f in
            var configuration = f.workerConfiguration()
            // Heartbeats (the fallback path) would come too late for the wait below.
            configuration.heartbeatInterval = .seconds(60)
            try await f.withWorker(configuration) { worker in
                let ref = try await f.client.submit(
                    Examples.Sleep.self, .init(seconds: 30), options: .init(queue: f.queue))
                try await f.awaitState(ref.id, .started)
                #expect(try await f.client.cancel(ref.id) == .running(worker: worker.configuration.workerID))
                await #expect(throws: ConveyorError.revoked(id: ref.id, reason: "cancelled")) {
                    _ = try await ref.get(timeout: .seconds(8))
                }
                try await eventually("the slot freed") { worker.runningTaskIDs.isEmpty }
            }
        }
    }

    @Test("cancelling a finished task changes nothing and says so")
    func finishedIsNoOp() async throws {
        try await WorkerFixture.with("cancel-finished") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 2, b: 2), options: .init(queue: f.queue))
                #expect(try await ref.get(timeout: .seconds(10)) == 4)
                #expect(try await f.client.cancel(ref.id) == .alreadyFinished(.success))
                #expect(try await ref.status().state == .success)
                #expect(try await ref.get(timeout: .seconds(1)) == 4)
            }
        }
    }
}
