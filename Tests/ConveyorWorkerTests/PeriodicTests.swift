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

/// Periodic tasks against the real servers: one submission per tick across a fleet, failover when the leader is
/// killed, no burst of missed ticks after downtime (unless catch-up is asked for).
@Suite("Periodic: one submission per tick across the fleet")
struct PeriodicTests {
    /// A schedule that appends its task id to the list `list` on every run.
    static func recorder(_ name: String, list: String, f: WorkerFixture, catchUp: Bool = false) throws -> PeriodicTask {
        try PeriodicTask(
            name: name, Examples.Record.self, input: .init(key: list, token: name), schedule: .every(.seconds(1)),
            options: .init(queue: f.queue), catchUp: catchUp)
    }

    static func configuration(
        _ f: WorkerFixture, id: String, periodic: [PeriodicTask], lease: Duration = .seconds(2)
    ) -> WorkerConfiguration {
        var configuration = f.workerConfiguration(concurrency: 2, id: id)
        configuration.periodic = periodic
        configuration.periodicLease = lease
        return configuration
    }

    static func runs(_ list: String, _ f: WorkerFixture) async throws -> [String] {
        try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string) ?? []
    }

    static func submitted(_ name: String, _ f: WorkerFixture) async throws -> Int64 {
        try await f.store.periodicSchedule(name)?.submitted ?? 0
    }

    /// Runs `workers` until `body` returns, then shuts them all down gracefully and waits for them.
    static func withFleet<T>(_ workers: [ConveyorWorker], _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            let result: Result<T, any Error>
            do {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            for worker in workers { worker.shutdown() }
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Runs a plain worker (no schedules) until every submitted tick of `name` has run.
    static func drain(_ name: String, list: String, _ f: WorkerFixture) async throws {
        try await f.withWorker { _ in
            let total = try await submitted(name, f)
            try await eventually("\(total) runs of \(name)", timeout: .seconds(30)) {
                try await f.redis.send(RedisCommand("LLEN", list)).int ?? 0 >= total
            }
        }
    }

    @Test("the lease and tick scripts: one leader, fenced writes, each tick claimed once")
    func scripts() async throws {
        try await WorkerFixture.with("periodic-scripts") { f in
            let store = f.store
            let ttl = Duration.seconds(60)
            guard case .leader(let a, true) = try await store.periodicLead(worker: "a", lease: .seconds(10), token: nil)
            else {
                Issue.record("a did not get the free lease")
                return
            }
            #expect(
                try await store.periodicLead(worker: "a", lease: .seconds(10), token: a)
                    == .leader(token: a, acquired: false))
            guard
                case .follower("a", let remaining) = try await store.periodicLead(
                    worker: "b", lease: .seconds(10), token: nil)
            else {
                Issue.record("b got a lease a holds")
                return
            }
            #expect(remaining > 0 && remaining <= 10_000)

            let planned = try await store.periodicPlan(
                name: "s", task: "t", schedule: "every 1s", queue: "q", nextMs: 1_000, worker: "a", token: a,
                recordTTL: ttl)
            #expect(planned?.lastTickMs == nil && planned?.pendingTickMs == nil)
            #expect(
                try await store.periodicClaimTick(
                    name: "s", tickMs: 1_000, id: "i1", nextMs: 2_000, worker: "a", token: a, recordTTL: ttl)
                    == .claimed)
            // The same tick, or an older one, is never claimed twice.
            #expect(
                try await store.periodicClaimTick(
                    name: "s", tickMs: 1_000, id: "i1", nextMs: 2_000, worker: "a", token: a, recordTTL: ttl)
                    == .done(lastTickMs: 1_000))
            #expect(
                try await store.periodicClaimTick(
                    name: "s", tickMs: 0, id: "i0", nextMs: 1_000, worker: "a", token: a, recordTTL: ttl)
                    == .done(lastTickMs: 1_000))
            // A worker without the lease cannot claim.
            #expect(
                try await store.periodicClaimTick(
                    name: "s", tickMs: 2_000, id: "i2", nextMs: 3_000, worker: "b", token: a, recordTTL: ttl)
                    == .notLeader)
            var record = try #require(try await store.periodicSchedule("s"))
            #expect(record.pendingTickMs == 1_000 && record.submitted == 0 && record.lastID == "i1")
            #expect(try await store.periodicSubmitted(name: "s", tickMs: 1_000))
            #expect(!(try await store.periodicSubmitted(name: "s", tickMs: 1_000)), "recorded twice")
            record = try #require(try await store.periodicSchedule("s"))
            #expect(record.pendingTickMs == nil && record.submitted == 1 && record.lastRunMs != nil)
            #expect(try await store.periodicSchedules().map(\.name) == ["s"])

            // Failover: a's lease gone, b leads with a larger token, and a's old token writes nothing.
            #expect(try await store.periodicResign(worker: "a", token: a))
            guard case .leader(let b, true) = try await store.periodicLead(worker: "b", lease: .seconds(10), token: nil)
            else {
                Issue.record("b did not take the free lease")
                return
            }
            #expect(b > a)
            #expect(try await store.periodicLeader()?.owner == "b")
            #expect(!(try await store.periodicResign(worker: "a", token: a)))
            #expect(
                try await store.periodicClaimTick(
                    name: "s", tickMs: 2_000, id: "i2", nextMs: 3_000, worker: "a", token: a, recordTTL: ttl)
                    == .notLeader)
            #expect(
                try await store.periodicPlan(
                    name: "s", task: "t", schedule: "every 1s", queue: "q", nextMs: 3_000, worker: "a", token: a,
                    recordTTL: ttl) == nil)
            let replanned = try await store.periodicPlan(
                name: "s", task: "t", schedule: "every 1s", queue: "q", nextMs: 3_000, worker: "b", token: b,
                recordTTL: ttl)
            #expect(replanned?.lastTickMs == 1_000)
        }
    }

    @Test("every second, three workers, 10 s: 10 ± 1 submissions, each run once")
    func threeWorkersTenSeconds() async throws {
        try await WorkerFixture.with("periodic-fleet") { f in
            let list = f.prefix + "runs"
            let task = try Self.recorder("tick", list: list, f: f)
            let workers = (0..<3).map {
                ConveyorWorker(
                    // The default lease: a loaded machine's stall must not cost a tick through a failover here.
                    configuration: Self.configuration(f, id: "periodic-w\($0)", periodic: [task], lease: .seconds(5)),
                    registry: Examples.registry)
            }
            let (count, leaderDuring) = try await Self.withFleet(workers) {
                try await eventually("the first tick", timeout: .seconds(30)) {
                    try await Self.submitted("tick", f) >= 1
                }
                let before = try await Self.submitted("tick", f)
                try await Task.sleep(for: .seconds(10))
                let after = try await Self.submitted("tick", f)
                return (after - before, try await f.store.periodicLeader())
            }
            print("periodic: \(count) submissions in 10 s from three workers")
            #expect((9...11).contains(count), "\(count) submissions in 10 s")
            #expect(leaderDuring.map { $0.owner.hasPrefix("periodic-w") } == true)
            // Each gave up its part on shutdown: the leader resigned.
            #expect(try await f.store.periodicLeader() == nil)

            try await Self.drain("tick", list: list, f)
            let runs = try await Self.runs(list, f)
            let total = try await Self.submitted("tick", f)
            #expect(Set(runs).count == runs.count, "a tick ran twice")
            #expect(Int64(runs.count) == total)
            // Every run is a tick's derived id.
            let record = try #require(try await f.store.periodicSchedule("tick"))
            let lastTick = try #require(record.lastTickMs)
            let ids = Set((0..<Int64(total + 5)).map { task.taskID(tickMs: lastTick - $0 * 1000, prefix: f.prefix) })
            #expect(Set(runs).isSubset(of: ids))
            #expect(record.schedule == "every 1s" && record.task == Examples.Record.name && record.queue == f.queue)
            #expect((record.nextMs ?? 0) > lastTick)
        }
    }

    @Test("a leader that died between publish and record: the next one publishes the tick again and it runs once")
    func crashBetweenPublishAndRecord() async throws {
        try await WorkerFixture.with("periodic-pending") { f in
            let list = f.prefix + "runs"
            let task = try Self.recorder("tick", list: list, f: f)
            // The dead leader: it took the lease, claimed the latest tick, published its message, and died before
            // recording the publish.
            guard
                case .leader(let ghost, _) = try await f.store.periodicLead(
                    worker: "ghost", lease: .seconds(60), token: nil)
            else {
                Issue.record("the ghost did not get the lease")
                return
            }
            let tick = MillisecondClock.now() / 1000 * 1000
            let id = task.taskID(tickMs: tick, prefix: f.prefix)
            let claim = try await f.store.periodicClaimTick(
                name: "tick", tickMs: tick, id: id, nextMs: tick + 1000, worker: "ghost", token: ghost,
                recordTTL: .seconds(600))
            #expect(claim == .claimed)
            _ = try await f.client.submit(name: task.task, id: id, kwargs: task.kwargs, options: task.options)
            // Its lease ran out (given up here to save the wait).
            #expect(try await f.store.periodicResign(worker: "ghost", token: ghost))

            let heir = ConveyorWorker(
                configuration: Self.configuration(f, id: "periodic-heir", periodic: [task]),
                registry: Examples.registry)
            try await Self.withFleet([heir]) {
                try await eventually(
                    "the pending tick published again and later ticks submitted", timeout: .seconds(30)
                ) {
                    guard let record = try await f.store.periodicSchedule("tick") else { return false }
                    return record.pendingTickMs == nil && record.submitted >= 3
                }
            }
            try await Self.drain("tick", list: list, f)
            let runs = try await Self.runs(list, f)
            let submitted = try await Self.submitted("tick", f)
            // The tick's two messages carry one id: one run. Every other tick ran once too.
            #expect(runs.filter { $0 == id }.count == 1, "runs: \(runs)")
            #expect(Int64(runs.count) == submitted, "\(runs.count) runs of \(submitted) recorded ticks")
            #expect(Set(runs).count == runs.count)
        }
    }

    /// Starts `conveyor-examples-worker` with a periodic schedule.
    static func startProcess(_ f: WorkerFixture, spec: String) throws -> ProcessRunner.ChildProcess {
        let executable = try #require(ExamplesWorkerProcess.executable, "conveyor-examples-worker is not built")
        return try ProcessRunner.start(
            executable: executable,
            arguments: [
                "--queues", f.queue, "--concurrency", "2", "--lease", "5", "--grace", "5", "--log-level", "warning",
                "--periodic", spec, "--periodic-lease", "2",
            ],
            environment: [
                "CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL,
                "CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix,
            ])
    }

    @Test("kill -9 of the leader process: another worker leads and the next tick still happens")
    func killTheLeader() async throws {
        try await WorkerFixture.with("periodic-kill") { f in
            let list = f.prefix + "runs"
            let spec =
                #"name=tick,task=examples.record,every=1s,queue=\#(f.queue),kwargs={"key":"\#(list)","token":"t"}"#
            var children: [ProcessRunner.ChildProcess] = []
            defer {
                for child in children {
                    child.signal(SIGKILL)
                    child.removeOutput()
                }
            }
            for _ in 0..<3 { children.append(try Self.startProcess(f, spec: spec)) }

            try await eventually("the first ticks", timeout: .seconds(60)) { try await Self.submitted("tick", f) >= 2 }
            let leader = try #require(try await f.store.periodicLeader())

            // `conveyor inspect periodic` shows the same leader and the schedule.
            if CLIBinary.path != nil {
                let run = try await CLITests.conveyor(
                    "inspect", "periodic", "--json",
                    environment: ["CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix])
                #expect(run.status == 0, "\(run.output)")
                guard case .object(let printed) = try JSONValue(json: Array(run.output.utf8)),
                    case .object(let shownLeader)? = printed["leader"],
                    case .array(let schedules)? = printed["schedules"], case .object(let schedule)? = schedules.first
                else {
                    Issue.record("unexpected output: \(run.output)")
                    return
                }
                #expect(shownLeader["owner"]?.stringValue == leader.owner, "\(run.output)")
                #expect(schedule["name"]?.stringValue == "tick" && schedule["schedule"]?.stringValue == "every 1s")
                #expect((schedule["submitted"]?.intValue ?? 0) >= 2 && schedule["next_ms"]?.intValue != nil)
            }
            let victim = try #require(
                children.first { leader.owner.contains(".\($0.pid).") }, "leader \(leader.owner) is none of ours")
            victim.signal(SIGKILL)
            let killedAtMs = MillisecondClock.now()
            let killedAt = ContinuousClock.now
            #expect(await victim.exitStatus() == 128 + SIGKILL)

            // The lease runs out within 2 s; a follower takes it within a third of that, then submits the tick due.
            try await eventually("a tick after the kill", timeout: .seconds(15)) {
                guard let record = try await f.store.periodicSchedule("tick"), record.pendingTickMs == nil else {
                    return false
                }
                return (record.lastTickMs ?? 0) > killedAtMs
            }
            let failover = ContinuousClock.now - killedAt
            let newLeader = try #require(try await f.store.periodicLeader())
            print("periodic: the next tick came \(failover) after the leader was killed")
            #expect(newLeader.owner != leader.owner && newLeader.token > leader.token)
            // Lease TTL (2 s) + one interval (1 s), with room for a loaded machine.
            #expect(failover < .seconds(7), "failover took \(failover)")

            // And the fleet goes on ticking, each tick once.
            let after = try await Self.submitted("tick", f)
            try await eventually("ticks go on", timeout: .seconds(10)) {
                try await Self.submitted("tick", f) >= after + 2
            }
            for child in children where child.pid != victim.pid { child.signal(SIGTERM) }
            for child in children where child.pid != victim.pid {
                #expect(await child.exitStatus() == 0, "\(child.output)")
            }
            try await Self.drain("tick", list: list, f)
            let runs = try await Self.runs(list, f)
            #expect(Set(runs).count == runs.count, "a tick ran twice")
        }
    }

    @Test("after downtime no burst of missed ticks; with catch-up every missed tick is submitted")
    func downtime() async throws {
        try await WorkerFixture.with("periodic-downtime") { f in
            let skipList = f.prefix + "skip"
            let catchUpList = f.prefix + "catchup"
            let schedules = [
                try Self.recorder("skip", list: skipList, f: f),
                try Self.recorder("catchup", list: catchUpList, f: f, catchUp: true),
            ]
            func fleet() -> [ConveyorWorker] {
                (0..<2).map {
                    ConveyorWorker(
                        configuration: Self.configuration(
                            f, id: TestServers.uniqueName("periodic-d\($0)"), periodic: schedules),
                        registry: Examples.registry)
                }
            }
            try await Self.withFleet(fleet()) {
                try await eventually("ticks of both schedules", timeout: .seconds(30)) {
                    let skip = try await Self.submitted("skip", f)
                    let catchUp = try await Self.submitted("catchup", f)
                    return skip >= 2 && catchUp >= 2
                }
            }
            let lastSkip = try #require(try await f.store.periodicSchedule("skip")?.lastTickMs)
            let lastCatchUp = try #require(try await f.store.periodicSchedule("catchup")?.lastTickMs)

            // Downtime: no worker for 6 intervals.
            try await Task.sleep(for: .seconds(6))
            let restartMs = MillisecondClock.now()
            try await Self.withFleet(fleet()) {
                try await eventually("ticks after the restart", timeout: .seconds(30)) {
                    let skip = try await f.store.periodicSchedule("skip")?.lastTickMs ?? 0
                    let catchUp = try await f.store.periodicSchedule("catchup")?.lastTickMs ?? 0
                    return skip > restartMs && catchUp > restartMs
                }
            }
            try await Self.drain("skip", list: skipList, f)
            try await Self.drain("catchup", list: catchUpList, f)

            // The ticks due while no worker ran (a second or more before the restart).
            func missed(after last: Int64) -> [Int64] {
                Array(stride(from: last + 1000, through: restartMs - 1000, by: 1000))
            }
            let skipRuns = Set(try await Self.runs(skipList, f))
            let missedSkip = missed(after: lastSkip).filter {
                skipRuns.contains(schedules[0].taskID(tickMs: $0, prefix: f.prefix))
            }
            #expect(missed(after: lastSkip).count >= 4, "the downtime was too short to test anything")
            // At most the latest missed tick (within the grace) is submitted, once.
            #expect(
                missedSkip.count <= 1, "missed ticks submitted: \(missedSkip.count) of \(missed(after: lastSkip).count)"
            )

            let catchUpRuns = Set(try await Self.runs(catchUpList, f))
            let missedCatchUp = missed(after: lastCatchUp)
            let caughtUp = missedCatchUp.filter {
                catchUpRuns.contains(schedules[1].taskID(tickMs: $0, prefix: f.prefix))
            }
            #expect(caughtUp == missedCatchUp, "caught up \(caughtUp.count) of \(missedCatchUp.count) missed ticks")
        }
    }
}
