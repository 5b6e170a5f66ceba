import ConveyorAMQP
import ConveyorExamples
import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Worker: running tasks")
struct WorkerTaskTests {
    @Test("a submitted task runs and its result, state and worker are recorded; by name with positional args too")
    func runsTasks() async throws {
        try await WorkerFixture.with("run") { f in
            try await f.withWorker { worker in
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 2, b: 3), options: .init(queue: f.queue))
                #expect(try await ref.get(timeout: .seconds(10)) == 5)
                let status = try await ref.status()
                #expect(status.state == .success)
                #expect(status.name == "examples.add")
                #expect(status.worker == worker.configuration.workerID)
                #expect(status.attempts == 1)

                let byName = try await f.client.submit(
                    name: "examples.add", args: [20, 22], options: .init(queue: f.queue))
                #expect(try await byName.get(timeout: .seconds(10)) == 42)
                let meta = try await f.client.result(byName.id)
                #expect(meta?.state == .success)
                #expect(meta?.result == 42)
            }
        }
    }

    @Test("one worker consumes several queues")
    func severalQueues() async throws {
        try await WorkerFixture.with("queues") { f in
            let second = TestServers.uniqueName("worker-queues-2")
            f.usedQueues.withLock { $0.append(second) }
            var configuration = f.workerConfiguration()
            configuration.queues = [f.queue, second]
            try await f.withWorker(configuration) { _ in
                try await f.awaitConsumers(on: second, atLeast: 1)
                let first = try await f.client.submit(
                    Examples.Add.self, .init(a: 1, b: 2), options: .init(queue: f.queue))
                let other = try await f.client.submit(
                    Examples.Add.self, .init(a: 3, b: 4), options: .init(queue: second))
                #expect(try await first.get(timeout: .seconds(10)) == 3)
                #expect(try await other.get(timeout: .seconds(10)) == 7)
                #expect(try await other.status().queue == second)
            }
        }
    }

    @Test("a failing task records its error's type and message, in Celery's exc_type/exc_message shape too")
    func failureIsRecorded() async throws {
        try await WorkerFixture.with("fail") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Fail.self, .init(message: "disk on fire"), options: .init(queue: f.queue))
                let error = await #expect(throws: TaskError.self) { try await ref.get(timeout: .seconds(10)) }
                #expect(error?.type == "ExampleError")
                #expect(error?.message == "disk on fire")
                let meta = try await f.client.result(ref.id)
                #expect(meta?.state == .failure)
                #expect(meta?.failure == TaskFailure(type: "ExampleError", message: "disk on fire"))
                guard case .object(let result)? = meta?.result else {
                    Issue.record("no exception object in \(String(describing: meta))")
                    return
                }
                #expect(result["exc_type"] == "ExampleError")
                #expect(result["exc_message"] == ["disk on fire"])
            }
        }
    }

    @Test("a redelivered task that already finished is acked and not run again")
    func finishedRedeliveryIsSkipped() async throws {
        try await WorkerFixture.with("redelivery") { f in
            let list = f.prefix + "runs"
            try await f.withWorker(f.workerConfiguration(concurrency: 1)) { _ in
                let ref = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "t"), options: .init(queue: f.queue))
                #expect(try await ref.get(timeout: .seconds(10)) == "t")
                // The same message again (same id), then a marker task behind it on the single slot.
                let envelope = TaskEnvelope(
                    id: ref.id, task: Examples.Record.name, kwargs: ["key": .string(list), "token": "t"])
                try await f.publish(envelope)
                let marker = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "marker"), options: .init(queue: f.queue))
                #expect(try await marker.get(timeout: .seconds(10)) == "marker")
                let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
                #expect(runs == [ref.id, marker.id])
                #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
            }
        }
    }

    @Test("progress is visible in status while the task runs")
    func progressIsVisible() async throws {
        try await WorkerFixture.with("progress") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Progress.self, .init(steps: 4, delay: 0.5), options: .init(queue: f.queue))
                var seen: TaskProgress?
                try await eventually("PROGRESS with a fraction") {
                    let status = try await ref.status()
                    if status.state == .progress, let progress = status.progress, progress.fraction > 0,
                        progress.fraction < 1
                    {
                        seen = progress
                        return true
                    }
                    return false
                }
                #expect(seen?.message?.hasPrefix("step ") == true)
                #expect(try await ref.get(timeout: .seconds(10)) == 4)
                #expect(try await ref.status().state == .success)
            }
        }
    }

    @Test("N slots run N tasks at once, and prefetch follows the slots: the rest stay in the queue")
    func slotsAndPrefetch() async throws {
        try await WorkerFixture.with("slots") { f in
            try await f.withWorker(f.workerConfiguration(concurrency: 2)) { worker in
                let refs = try await f.client.submitMany(
                    Examples.Sleep.self, Array(repeating: .init(seconds: 5), count: 5),
                    options: .init(queue: f.queue))
                try await eventually("two tasks running") { worker.runningTaskIDs.count == 2 }
                // Two delivered and running, three still ready in the broker for other workers.
                try await eventually("three messages ready") {
                    try await f.admin.queueInfo(f.queue)?.messageCount == 3
                }
                #expect(worker.runningTaskIDs.count == 2)
                let states = try await refs.asyncMap { try await $0.status().state }
                #expect(states.filter { $0 == .started }.count == 2)
                #expect(states.filter { $0 == .pending }.count == 3)
            }
        }
    }

    @Test("the worker records itself with its queues, slots and running tasks, and leaves when it stops")
    func heartbeatRecord() async throws {
        try await WorkerFixture.with("heartbeat") { f in
            let configuration = f.workerConfiguration(concurrency: 3)
            try await f.withWorker(configuration) { worker in
                let ref = try await f.client.submit(
                    Examples.Sleep.self, .init(seconds: 4), options: .init(queue: f.queue))
                var found: WorkerRecord?
                try await eventually("the worker's record lists the running task") {
                    found = try await f.store.workers().first { $0.id == configuration.workerID }
                    return found?.running == [ref.id]
                }
                let record = try #require(found)
                #expect(record.queues == [f.queue])
                #expect(record.slots == 3)
                #expect(record.pid == Int(ProcessInfo.processInfo.processIdentifier))
                #expect(record.lastBeatMs != nil)
            }
            #expect(try await f.store.workers().contains { $0.id == configuration.workerID } == false)
        }
    }

    @Test("a task revoked while it runs is cancelled and ends REVOKED")
    func revokedWhileRunning() async throws {
        try await WorkerFixture.with("revoke") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Sleep.self, .init(seconds: 30), options: .init(queue: f.queue))
                try await f.awaitState(ref.id, .started)
                #expect(try await f.store.revoke(ref.id, reason: "not needed") != .revoked)
                let status = try await f.awaitState(ref.id, .revoked, timeout: .seconds(10))
                #expect(status.reason == "not needed")
                await #expect(throws: ConveyorError.revoked(id: ref.id, reason: "not needed")) {
                    _ = try await ref.get(timeout: .seconds(5))
                }
            }
        }
    }

    @Test("a task leased by another worker runs here only once that lease has expired")
    func waitsOutForeignLease() async throws {
        try await WorkerFixture.with("lease") { f in
            let envelope = TaskEnvelope(task: Examples.Add.name, kwargs: ["a": 1, "b": 1])
            // A worker that died holding the task: its lease lasts another second.
            let claimed = try await f.store.claim(
                envelope.id, worker: "dead-worker", name: envelope.task, queue: f.queue, lease: .seconds(1))
            guard case .run = claimed else { throw TestSupportError("claim: \(claimed)") }
            try await f.withWorker { _ in
                try await f.publish(envelope)
                let status = try await f.awaitState(envelope.id, .success)
                #expect(status.attempts == 2)
                #expect(status.worker != "dead-worker")
            }
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
