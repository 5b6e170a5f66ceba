import ConveyorAMQP
import ConveyorExamples
import ConveyorIO
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

#if canImport(Glibc)
import Glibc
#endif

@Suite("Actors: processes, failover, restarts", .serialized)
struct ActorProcessTests {
    @Test(
        "3 processes spawn Counter with one name (getIfExists) and make 1,000 increments each: one actor, get = 3,000")
    func threeProducerProcesses() async throws {
        try await ActorFixture.with("producers") { f in
            let executable = try #require(
                ActorFixture.actorClientExecutable, "conveyor-examples-actor-client is not built")
            let worker = try f.startWorker()
            defer {
                worker.signal(SIGKILL)
                worker.removeOutput()
            }
            let producers = try (0..<3).map { _ in
                try ProcessRunner.start(
                    executable: executable,
                    arguments: ["--name", "shared", "--namespace", "race", "--increments", "1000"],
                    environment: f.environment)
            }
            var ids = Set<String>()
            for producer in producers {
                let status = await producer.exitStatus()
                #expect(status == 0, "producer output: \(producer.output)")
                if let line = producer.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                    let json = try? JSONValue(json: Array(line.utf8)), case .object(let object) = json,
                    let id = object["actor"]?.stringValue
                {
                    ids.insert(id)
                }
                producer.removeOutput()
            }
            #expect(ids.count == 1, "the processes got \(ids.count) actors")
            let counter = try await f.system.actor(named: "shared", namespace: "race", as: Counter.self)
            #expect(ids == [counter.id.rawValue])
            #expect(try await counter.get() == 3_000)
            #expect(try await f.store.liveIDs() == [counter.id.rawValue])
            try await f.system.kill(counter)
            await f.deleteTaskQueues()
        }
    }

    @Test(
        "kill -9 of the host during a stream of calls: the second worker takes over within 5 s, no call is lost, the durable Accumulator continues from its snapshot"
    )
    func failover() async throws {
        try await ActorFixture.with("failover") { f in
            // At notice level the hosts log each redelivered call they run again.
            let first = try f.startWorker(logLevel: "notice")
            let second = try f.startWorker(logLevel: "notice")
            defer {
                first.signal(SIGKILL)
                second.signal(SIGKILL)
                first.removeOutput()
                second.removeOutput()
            }
            let accumulator = try await f.system.spawn(
                Accumulator.self, .init(), options: .init(name: "sum", lifetime: .detached, maxRestarts: 3))
            let counter = try await f.system.spawn(
                Counter.self, .init(), options: .init(name: "count", lifetime: .detached, maxRestarts: 3))
            // Both actors' mailboxes have a standby consumer before anything is killed.
            try await eventually("both workers subscribed", timeout: .seconds(30)) {
                (try await f.admin.queueInfo(accumulator.id.queue)?.consumerCount ?? 0) >= 2
            }
            let total = 600
            let succeeded = LockedValue(0)
            let lastSuccess = LockedValue(ContinuousClock.now)
            let longestGap = LockedValue(Duration.zero)
            let stream = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    var issued = 0
                    func issue() {
                        group.addTask {
                            _ = try await accumulator.add(1)
                            let now = ContinuousClock.now
                            succeeded.withLock { $0 += 1 }
                            lastSuccess.withLock { last in
                                longestGap.withLock { $0 = max($0, now - last) }
                                last = now
                            }
                        }
                        issued += 1
                    }
                    while issued < 8 { issue() }
                    while try await group.next() != nil {
                        if issued < total {
                            try await Task.sleep(for: .milliseconds(5))
                            issue()
                        }
                    }
                }
            }
            try await eventually("150 calls done", timeout: .seconds(60)) { succeeded.current >= 150 }
            let record = try #require(try await f.system.record(of: accumulator))
            // Worker ids read `conveyor@<host>.<pid>.<random>`.
            let hostPID = try #require(
                Int32(record.host.split(separator: ".").dropLast().last ?? ""), "host \(record.host)")
            let victim = hostPID == first.pid ? first : second
            #expect(hostPID == first.pid || hostPID == second.pid)
            let doneAtKill = succeeded.current
            victim.signal(SIGKILL)
            _ = await victim.exitStatus()
            try await stream.value
            try await eventually("a call after the kill") { succeeded.current > doneAtKill }
            #expect(succeeded.current == total)
            #expect(longestGap.current < .seconds(5), "calls stopped for \(longestGap.current) at the failover")

            let state = try await accumulator.state()
            // Each accepted call added 1 exactly once: none lost, and (snapshot saved with each result) none
            // applied twice.
            #expect(state.total == total, "total \(state.total) after \(total) accepted calls")
            #expect(state.additions == total, "\(state.additions - total) calls ran twice")
            // For the record (docs/ARCHITECTURE.md, "Actors"): how long calls stopped, how many calls the new host
            // ran again (delivered to the dead host without an outcome: they may have run there too), and how many
            // were applied twice to the state.
            let survivor = victim.pid == first.pid ? second : first
            let rerun = survivor.output.components(separatedBy: "running a redelivered call again").count - 1
            print(
                "actor failover: longest pause between answers \(longestGap.current), "
                    + "calls run again by the new host: \(rerun), calls applied twice: \(state.additions - total)")
            let after = try #require(try await f.system.record(of: accumulator))
            #expect(after.restarts == 1)
            #expect(after.host != record.host)
            // The non-durable Counter was re-created by its initialiser on the new host.
            #expect(try await counter.get() == 0)
            try await f.system.kill(accumulator)
            try await f.system.kill(counter)
            await f.deleteTaskQueues()
        }
    }

    @Test(
        "after a full restart of RabbitMQ, Redis and the workers, a detached named actor is found by name and answers")
    func fullRestart() async throws {
        try await withPrivateServers(redisAppendfsync: .always) { rabbit, redis in
            try await restartScenario(amqpURL: rabbit.url, redisURL: redis.url, rabbit, redis)
        }
    }

    func restartScenario(
        amqpURL: String, redisURL: String, _ rabbit: PrivateRabbitMQ, _ redis: PrivateRedis
    )
        async throws
    {
        try await ActorFixture.with("restart", amqpURL: amqpURL, redisURL: redisURL) { f in
            var worker = try f.startWorker()
            let accumulator = try await f.system.spawn(
                Accumulator.self, .init(), options: .init(name: "survivor", lifetime: .detached, maxRestarts: -1))
            for _ in 0..<5 { try await accumulator.add(2) }
            worker.signal(SIGKILL)
            _ = await worker.exitStatus()
            worker.removeOutput()
            try await rabbit.restart()
            try await redis.restart()

            worker = try f.startWorker()
            defer {
                worker.signal(SIGKILL)
                worker.removeOutput()
            }
            let fresh = try await ConveyorActorSystem.connect(f.configuration, callTimeout: .seconds(60))
            let found = try await fresh.actor(named: "survivor", as: Accumulator.self)
            #expect(found.id == accumulator.id)
            let state = try await found.state()
            #expect(state.total == 10)
            #expect(try await found.add(1) == 11)
            await fresh.close()
        }
    }
}
