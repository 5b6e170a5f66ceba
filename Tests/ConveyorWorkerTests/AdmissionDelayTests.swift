import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

#if canImport(Glibc)
import Glibc
#endif

@Suite("Admission: delays and expiry")
struct AdmissionDelayTests {
    @Test(
        "1,000 countdown tasks over 5 s, one promoter killed mid-way: none early, none lost or run twice, p99 measured")
    func countdownsWithPromoterKilled() async throws {
        try await WorkerFixture.with("countdown") { f in
            let list = f.prefix + "runs"
            let total = 1_000
            // A second process promotes too but consumes a queue of its own, so killing it tests the promoter
            // alone (a task it was running would be rerun by design, which is not what this test is about).
            let idle = TestServers.uniqueName("worker-countdown-idle")
            f.usedQueues.withLock { $0.append(idle) }
            let idleFixture = WorkerFixture(
                client: f.client, admin: f.admin, prefix: f.prefix, queue: idle, redisURL: f.redisURL,
                usedQueues: f.usedQueues)
            let promoter = try ExamplesWorkerProcess.start(idleFixture, concurrency: 1, lease: 2)
            defer { promoter.removeOutput() }
            // The worker that runs the tasks (and promotes too, at the default interval) is a process of its own
            // as well: the measured times are the worker's and the promoter's, not those of this test process's
            // thread pool, which every test running beside this one shares.
            let worker = try ExamplesWorkerProcess.start(f, concurrency: 16, lease: 5)
            defer { worker.removeOutput() }
            // Reaped processes are never signalled again (their pids may belong to others by then).
            var promoterReaped = false
            var workerReaped = false
            do {
                try await f.awaitConsumers(on: idle, atLeast: 1)
                try await f.awaitConsumers(on: f.queue, atLeast: 1)
                do {
                    // Due times from 2 s to 7 s from now, every 5 ms; submitted soonest first, 100 at a time.
                    let base = Date().addingTimeInterval(2)
                    let due = (0..<total).map { base.addingTimeInterval(Double($0) * 0.005) }
                    var dueByID: [String: Int64] = [:]
                    var behindPlan = 0
                    for chunk in stride(from: 0, to: total, by: 100) {
                        try await withThrowingTaskGroup(of: (String, Int64, Bool).self) { group in
                            for index in chunk..<min(chunk + 100, total) {
                                let planned = due[index]
                                group.addTask {
                                    // On a machine too loaded to submit ahead of the plan, a task is still given
                                    // 300 ms of countdown: every one goes through the delay set.
                                    let eta = max(planned, Date().addingTimeInterval(0.3))
                                    let ref = try await f.client.submit(
                                        Examples.Record.self, .init(key: list, token: "\(index)"),
                                        options: .init(queue: f.queue, eta: eta))
                                    return (ref.id, MillisecondClock.milliseconds(eta), eta > planned)
                                }
                            }
                            for try await (id, dueMs, late) in group {
                                dueByID[id] = dueMs
                                if late { behindPlan += 1 }
                            }
                        }
                    }
                    let ids = Array(dueByID.keys)
                    #expect(ids.count == total)
                    let lastDueMs = dueByID.values.max() ?? 0
                    let spread = Double(lastDueMs - (dueByID.values.min() ?? 0)) / 1000
                    #expect(spread >= 4.9, "due times spread over \(spread) s")

                    // Promoted messages piling up in the queue mean the worker, not the promoter, is behind: the
                    // most messages seen waiting there, sampled while the tasks fall due.
                    var backlog = 0
                    func sampleBacklog() async throws {
                        backlog = max(backlog, try await f.admin.queueInfo(f.queue)?.messageCount ?? 0)
                    }

                    // Kill the other promoter half-way through.
                    let middle = dueByID.values.sorted()[total / 2]
                    while MillisecondClock.now() < middle {
                        try await sampleBacklog()
                        try await Task.sleep(for: .milliseconds(min(50, max(1, middle - MillisecondClock.now()))))
                    }
                    let left = try await f.redis.send(RedisCommand("ZCARD", f.store.keys.delayed)).int ?? 0
                    let killedMs = MillisecondClock.now()
                    promoter.signal(SIGKILL)
                    #expect(await promoter.exitStatus() == 128 + SIGKILL)
                    promoterReaped = true
                    print("promoter killed with \(left) of \(total) tasks still delayed")
                    if behindPlan <= total / 100 {
                        #expect(left > 100 && left < total - 100, "killed mid-way (\(left) still delayed)")
                    }

                    try await eventually("every task ran", timeout: .seconds(40)) {
                        try await sampleBacklog()
                        return try await f.redis.send(RedisCommand("LLEN", list)).int ?? 0 >= total
                    }
                    try await Task.sleep(for: .seconds(2.5))  // past the dead promoter's lease: any duplicate shows
                    let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
                    #expect(runs?.count == total, "no task ran twice")
                    #expect(Set(runs ?? []) == Set(ids), "no task was lost")

                    var lateness: [Int64] = []
                    var early = 0
                    var late: [(dueAfterKill: Int64, lateness: Int64)] = []
                    for id in ids {
                        let status = try await f.store.status(id)
                        guard let started = status.startedMs, let dueMs = dueByID[id] else { continue }
                        if started < dueMs { early += 1 }
                        lateness.append(started - dueMs)
                        if started - dueMs > 200 { late.append((dueMs - killedMs, started - dueMs)) }
                    }
                    if !late.isEmpty {
                        late.sort { $0.dueAfterKill < $1.dueAfterKill }
                        print("late (due ms after the kill, lateness ms): \(late.prefix(20)) … \(late.suffix(5))")
                    }
                    lateness.sort()
                    #expect(lateness.count == total)
                    #expect(early == 0, "\(early) started before their due time")
                    let p50 = lateness[lateness.count / 2]
                    let p99 = lateness[lateness.count * 99 / 100]
                    let worst = lateness.last ?? 0
                    print("countdown lateness over \(total) tasks: p50 \(p50) ms, p99 \(p99) ms, max \(worst) ms")
                    // The target, 200 ms, is asserted: `make test` runs this suite in its serial phase (p99 about
                    // 60–150 ms here). When something else saturates the shared CPU anyway, this process cannot submit ahead of the plan, or the worker process
                    // falls behind 200 tasks/s and promoted messages wait in the queue: every task is then late
                    // alike, which says nothing about promotion, so only the properties above are asserted.
                    // Otherwise a promoter that waited out a lease, or polled every second, fails here.
                    print("most messages waiting in the queue: \(backlog); submits behind plan: \(behindPlan)")
                    if behindPlan <= total / 100 && backlog <= 50 {
                        #expect(p99 <= 200, "p99 lateness \(p99) ms; the worker said: \(worker.output.suffix(3_000))")
                    } else {
                        print("countdown lateness not asserted: the machine was saturated")
                    }
                    #expect(try await f.redis.send(RedisCommand("ZCARD", f.store.keys.delayed)).int == 0)
                    #expect(try await f.redis.send(RedisCommand("ZCARD", f.store.keys.delayedInFlight)).int == 0)
                }
                worker.signal(SIGTERM)
                #expect(await worker.exitStatus() == 0, "\(worker.output)")
                workerReaped = true
            } catch {
                for (process, reaped) in [(promoter, promoterReaped), (worker, workerReaped)] where !reaped {
                    process.signal(SIGKILL)
                    _ = await process.exitStatus()
                }
                throw error
            }
        }
    }

    /// Sends examples.record with Celery's `countdown` (an `eta` header) and prints its id.
    static let celeryCountdown = #"""
        import json, sys
        from celery import Celery
        from kombu import Queue
        broker, backend, queue, key = sys.argv[1:5]
        app = Celery("countdown", broker=broker, backend=backend)
        app.conf.update(
            task_serializer="json", accept_content=["json"], result_serializer="json",
            task_queues=[Queue(queue, routing_key=queue, queue_arguments={
                "x-queue-type": "quorum", "x-delivery-limit": 10,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue + ".dlq"})])
        result = app.send_task("examples.record", kwargs={"key": key, "token": "py"}, queue=queue, countdown=1.0)
        print(json.dumps({"id": result.id}))
        """#

    @Test(
        "Celery's countdown (an eta header): the worker parks the message in the delay set; it runs once, when due",
        .enabled(if: CeleryPython.isAvailable, Comment(rawValue: CeleryPython.skipMessage)))
    func celeryETA() async throws {
        try await WorkerFixture.with("celery-eta") { f in
            let list = f.prefix + "runs"
            try await f.withWorker { _ in
                let sentMs = MillisecondClock.now()
                let output = try await ProcessRunner.run(
                    executable: "/usr/bin/timeout",
                    arguments: [
                        "60", CeleryPython.path, "-c", Self.celeryCountdown, TestServers.amqpURL,
                        TestServers.redisURL, f.queue, list,
                    ],
                    displayName: "celery countdown")
                let line = try #require(output.split(separator: "\n").last, "no output: \(output)")
                guard case .object(let fields) = try JSONValue(json: Array(line.utf8)),
                    let id = fields["id"]?.stringValue
                else { throw TestSupportError("no id in \(line)") }
                try await eventually("the message parked in the delay set", timeout: .seconds(5)) {
                    if try await f.store.scheduledTime(id) != nil { return true }
                    return (try await f.redis.send(RedisCommand("LLEN", list)).int ?? 0) > 0
                }
                let status = try await f.awaitState(id, .success)
                let started = try #require(status.startedMs)
                #expect(started >= sentMs + 1_000 - 5, "started \(started - sentMs) ms after sending")
                #expect(started <= sentMs + 1_000 + 5_000)
            }
            let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
            #expect(runs?.count == 1)
        }
    }

    @Test("a message published with a future eta (as other producers do) is parked by the worker and runs when due")
    func publishedETAIsParked() async throws {
        try await WorkerFixture.with("eta-parked") { f in
            try await f.withWorker { _ in
                let eta = Date().addingTimeInterval(1.5)
                let envelope = TaskEnvelope(task: "examples.add", kwargs: ["a": 2, "b": 3], eta: eta)
                try await f.publish(envelope)
                try await eventually("parked in the delay set", timeout: .seconds(5)) {
                    try await f.store.scheduledTime(envelope.id) != nil
                }
                #expect(try await f.store.scheduledTime(envelope.id) == MillisecondClock.milliseconds(eta))
                let status = try await f.awaitState(envelope.id, .success)
                #expect(try #require(status.startedMs) >= MillisecondClock.milliseconds(eta))
                #expect(try await f.store.scheduledTime(envelope.id) == nil)
            }
        }
    }

    @Test("a task still queued after its expiry is REVOKED (expired) and never runs")
    func expiredWhileQueued() async throws {
        try await WorkerFixture.with("expired-queued") { f in
            let list = f.prefix + "runs"
            let ref = try await f.client.submit(
                Examples.Record.self, .init(key: list, token: "x"),
                options: .init(queue: f.queue, expires: Date().addingTimeInterval(0.3)))
            let fresh = try await f.client.submit(
                Examples.Record.self, .init(key: list, token: "y"),
                options: .init(queue: f.queue, expires: Date().addingTimeInterval(120)))
            try await Task.sleep(for: .milliseconds(600))
            try await f.withWorker { _ in
                let status = try await f.awaitState(ref.id, .revoked)
                #expect(status.reason == "expired")
                await #expect(throws: ConveyorError.self) { try await ref.get(timeout: .seconds(5)) }
                #expect(try await fresh.get(timeout: .seconds(20)) == "y")
            }
            let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string)
            #expect(runs == [fresh.id], "the expired task never ran")
        }
    }

    @Test("a delayed task whose expiry passes while it waits in the delay set is REVOKED (expired) and never runs")
    func expiredWhileDelayed() async throws {
        try await WorkerFixture.with("expired-delayed") { f in
            let list = f.prefix + "runs"
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Record.self, .init(key: list, token: "x"),
                    options: .init(
                        queue: f.queue, expires: Date().addingTimeInterval(0.3), countdown: 2))
                // The client put it straight into the delay set; nothing was published.
                #expect(try await f.store.scheduledTime(ref.id) != nil)
                #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
                let status = try await f.awaitState(ref.id, .revoked)
                #expect(status.reason == "expired")
                #expect(try await f.store.scheduledTime(ref.id) == nil)
            }
            #expect(try await f.redis.send(RedisCommand("LLEN", list)).int == 0)
        }
    }
}
