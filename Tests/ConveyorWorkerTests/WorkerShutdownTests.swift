import ConveyorExamples
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Worker: graceful shutdown")
struct WorkerShutdownTests {
    @Test("running tasks finish within the grace period; queued ones stay in the queue")
    func drainsWithinGrace() async throws {
        try await WorkerFixture.with("drain") { f in
            let refs = try await f.withWorker(f.workerConfiguration(concurrency: 2)) { worker in
                let refs = try await f.client.submitMany(
                    Examples.Sleep.self, Array(repeating: .init(seconds: 0.6), count: 4),
                    options: .init(queue: f.queue))
                try await eventually("two running") { worker.runningTaskIDs.count == 2 }
                return refs
            }
            // withWorker returned after the graceful shutdown: the two running finished, two never started.
            let states = try await refs.asyncMap { try await $0.status().state }
            #expect(states.filter { $0 == .success }.count == 2)
            #expect(states.filter { $0 == .pending }.count == 2)
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 2)
        }
    }

    @Test("past the grace period a running task is cancelled, released and requeued; the next worker runs it")
    func requeuesAfterGrace() async throws {
        try await WorkerFixture.with("requeue") { f in
            var configuration = f.workerConfiguration(concurrency: 1)
            configuration.gracePeriod = .milliseconds(200)
            let ref = try await f.withWorker(configuration) { worker in
                let ref = try await f.client.submit(
                    Examples.Sleep.self, .init(seconds: 1.5), options: .init(queue: f.queue))
                try await eventually("running") { worker.runningTaskIDs == [ref.id] }
                return ref
            }
            let released = try await ref.status()
            #expect(released.state == .received)
            #expect(released.attempts == 0)
            #expect(released.leaseOwner == nil)
            try await eventually("the message back in the queue") {
                try await f.admin.queueInfo(f.queue)?.messageCount == 1
            }
            let result = try await f.withWorker { _ in try await ref.get(timeout: .seconds(10)) }
            #expect(result == 1.5)
            #expect(try await ref.status().attempts == 1)
        }
    }

    @Test(
        "a queue deleted under the worker stops it with an error naming the queue, rather than leaving it half-serving",
        .timeLimit(.minutes(1)))
    func lostSubscriptionStopsWorker() async throws {
        try await WorkerFixture.with("lost-queue") { f in
            let other = TestServers.uniqueName("worker-lost-queue")
            f.usedQueues.withLock { $0.append(other) }
            // Declared by someone else, so the worker's connection has no declaration of its own to replay.
            try await f.client.configuration.topology.ensure(other, on: f.admin)
            var configuration = f.workerConfiguration()
            configuration.queues = [f.queue, other]
            let worker = ConveyorWorker(configuration: configuration, registry: Examples.registry)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                try await f.awaitConsumers(on: other, atLeast: 1)
                _ = try await f.admin.deleteQueue(other)
                let error = await #expect(throws: WorkerError.self) { try await group.next() }
                guard case .consumerEnded(let queue, _)? = error else {
                    Issue.record("expected consumerEnded, got \(String(describing: error))")
                    return
                }
                #expect(queue == other)
            }
        }
    }
}
