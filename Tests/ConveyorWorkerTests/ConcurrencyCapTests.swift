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

@Suite("Worker: fleet-wide concurrency caps")
struct ConcurrencyCapTests {
    @Test("maxRunning 2 across three workers, 30 tasks of 200 ms: never more than 2 at once, and 2 most of the time")
    func capAcrossWorkers() async throws {
        try await WorkerFixture.with("cap-fleet") { f in
            let list = f.prefix + "runs"
            let total = 30
            let refs = try await f.client.submitMany(
                Examples.Limited.self, (0..<total).map { _ in .init(key: list, seconds: 0.2) },
                options: .init(queue: f.queue))
            let registry = Examples.registry(limited: TaskRunOptions(maxRunning: 2))
            let started = ContinuousClock.now
            try await f.withWorkers(3, registry: registry, concurrency: 3) { _ in
                let (_, pending) = try await f.client.wait(refs, timeout: .seconds(60))
                #expect(pending.isEmpty)
            }
            let elapsed = ContinuousClock.now - started
            let runs = try await f.limitedRuns(list)
            #expect(runs.count == total)
            #expect(runs.allSatisfy { $0.endMs != nil })
            let most = maxOverlap(runs)
            print("maxRunning 2: \(total) runs of 200 ms in \(elapsed), at most \(most) at once")
            #expect(most == 2, "at most 2 may run at once, and the cap should be used")
            // Every slot was given back.
            #expect(
                try await f.redis.send(RedisCommand("ZCARD", f.store.keys.cap(pool: Examples.Limited.name))).int == 0)
            #expect(
                try await f.redis.send(RedisCommand("ZCARD", f.store.keys.capWaiting(pool: Examples.Limited.name))).int
                    == 0)
        }
    }

    @Test("kill -9 of a worker holding both slots: the capacity comes back within the lease, not before")
    func killedHolderReturnsCapacity() async throws {
        try await WorkerFixture.with("cap-kill") { f in
            let list = f.prefix + "runs"
            let lease = 2.0
            let executable = try #require(ExamplesWorkerProcess.executable, "conveyor-examples-worker is not built")
            let holder = try ProcessRunner.start(
                executable: executable,
                arguments: [
                    "--queues", f.queue, "--concurrency", "2", "--lease", "\(lease)", "--grace", "1",
                    "--max-running", "2", "--log-level", "warning",
                ],
                environment: [
                    "CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL,
                    "CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix,
                ])
            defer { holder.removeOutput() }
            var killed = false
            defer { if !killed { holder.signal(SIGKILL) } }

            try await f.awaitConsumers(on: f.queue, atLeast: 1)
            let long = try await f.client.submitMany(
                Examples.Limited.self, (0..<2).map { _ in .init(key: list, seconds: 120) },
                options: .init(queue: f.queue))
            try await eventually("both long tasks running in the process", timeout: .seconds(30)) {
                try await f.limitedRuns(list).count == 2
            }

            let registry = Examples.registry(limited: TaskRunOptions(maxRunning: 2))
            try await f.withWorkers(1, registry: registry, concurrency: 4, lease: .seconds(Int64(lease))) { _ in
                try await f.awaitConsumers(on: f.queue, atLeast: 2)
                let short = try await f.client.submitMany(
                    Examples.Limited.self, (0..<2).map { _ in .init(key: list, seconds: 0.2) },
                    options: .init(queue: f.queue))
                // The process holds both slots: the short tasks wait (parked), however often they come back.
                try await Task.sleep(for: .milliseconds(2_500))
                #expect(try await f.limitedRuns(list).count == 2, "a short task ran while both slots were held")
                #expect(
                    try await f.redis.send(RedisCommand("ZCARD", f.store.keys.capWaiting(pool: Examples.Limited.name)))
                        .int == 2)

                holder.signal(SIGKILL)
                killed = true
                let killedAt = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                #expect(await holder.exitStatus() == 128 + SIGKILL)
                // The killed runs must not simply run again here and take the slots back.
                for ref in long { _ = try await f.store.revoke(ref.id, reason: "test: killed holder") }

                let (_, pending) = try await f.client.wait(short, timeout: .seconds(30))
                #expect(pending.isEmpty)
                let shortIDs = Set(short.map(\.id))
                let shortRuns = try await f.limitedRuns(list).filter { shortIDs.contains($0.id) }
                let firstStart = try #require(shortRuns.first?.startMs)
                let after = firstStart - killedAt
                print("cap after kill -9: the first waiting task started \(after) ms after the kill (lease \(lease) s)")
                // The dead worker's slots lapse one lease after its last renewal (at most a heartbeat before the
                // kill): not before ~lease - heartbeat, and soon after the lease.
                #expect(after >= Int64(lease * 1000 / 2), "the slots came back before the dead worker's lease ran out")
                #expect(after <= Int64(lease * 1000) + 2_500, "the capacity took too long to come back")
            }
        }
    }

    @Test("conveyor inspect limits shows the configured limits and the slots held now")
    func inspectLimits() async throws {
        try await WorkerFixture.with("cap-inspect") { f in
            let list = f.prefix + "runs"
            let registry = Examples.registry(
                limited: TaskRunOptions(
                    rateLimit: try RateLimit("50/s"), rateLimitKey: .argument("customer"), maxRunning: 3, pool: "gpu"))
            try await f.withWorkers(1, registry: registry) { _ in
                let refs = try await f.client.submitMany(
                    Examples.Limited.self, (0..<2).map { _ in .init(key: list, seconds: 30) },
                    options: .init(queue: f.queue))
                try await eventually("both running") { try await f.limitedRuns(list).count == 2 }
                let statuses = try await f.store.limitStatuses()
                let status = try #require(statuses.first { $0.record.task == Examples.Limited.name })
                #expect(status.record.rate == "50/s")
                #expect(status.record.rateKey == "argument:customer")
                #expect(status.record.maxRunning == 3)
                #expect(status.record.pool == "gpu")
                #expect(Set(status.holders.map(\.id)) == Set(refs.map(\.id)))

                let run = try await CLITests.conveyor(
                    "inspect", "limits", "--json", environment: ["CONVEYOR_PREFIX": f.prefix])
                #expect(run.status == 0, "\(run.output)")
                let printed = try JSONValue(json: Array(run.output.utf8))
                guard case .array(let rows) = printed else {
                    Issue.record("not a JSON array: \(run.output)")
                    return
                }
                let objects: [[String: JSONValue]] = rows.compactMap {
                    if case .object(let fields) = $0 { return fields }
                    return nil
                }
                let row = try #require(objects.first { $0["task"]?.stringValue == Examples.Limited.name })
                #expect(row["running"]?.intValue == 2)
                #expect(row["max_running"]?.intValue == 3)
                #expect(row["rate"]?.stringValue == "50/s")
                for ref in refs { _ = try await f.store.revoke(ref.id, reason: "test over") }
            }
        }
    }
}
