import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

#if canImport(Glibc)
import Glibc
#endif

/// The examples worker as a separate process, so it can be killed for real.
enum ExamplesWorkerProcess {
    /// `conveyor-examples-worker`, built beside the test bundle by `swift build --build-tests`.
    static var executable: String? {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            TestServers.repositoryRoot.appendingPathComponent(".build/debug"),
        ].map { $0.appendingPathComponent("conveyor-examples-worker").path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts it on the fixture's queue, servers and key prefix; `extra` arguments come last.
    static func start(
        _ f: WorkerFixture, concurrency: Int, lease: Double = 30, logLevel: String = "warning", extra: [String] = []
    ) throws -> ProcessRunner.ChildProcess {
        let executable = try #require(executable, "conveyor-examples-worker is not built next to the tests")
        return try ProcessRunner.start(
            executable: executable,
            arguments: [
                "--queues", f.queue, "--concurrency", "\(concurrency)", "--lease", "\(lease)", "--grace", "5",
                "--log-level", logLevel,
            ] + extra,
            environment: [
                "CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL,
                "CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix,
            ])
    }
}

@Suite("Worker: crashes lose nothing")
struct WorkerCrashTests {
    @Test("kill -9 of a worker running 1,000 examples.record tasks: a fresh worker finishes every one")
    func killNineThenFreshWorker() async throws {
        try await WorkerFixture.with("kill9") { f in
            let list = f.prefix + "runs"
            let total = 1_000
            let refs = try await f.client.submitMany(
                Examples.Record.self, (0..<total).map { .init(key: list, token: "t\($0)") },
                options: .init(queue: f.queue))

            let first = try ExamplesWorkerProcess.start(f, concurrency: 8, lease: 2)
            defer { first.removeOutput() }
            do {
                // Kill it mid-flight: some tasks done, some claimed and running (or, if polling keeps missing the
                // running ones on a loaded machine, once 600 are done).
                try await eventually("some tasks done and some running", timeout: .seconds(60)) {
                    let done = try await f.redis.send(RedisCommand("LLEN", list)).int ?? 0
                    guard done >= 200 else { return false }
                    return try await f.store.count(state: .started) > 0 || done >= 600
                }
            } catch {
                first.signal(SIGKILL)
                _ = await first.exitStatus()
                throw error
            }
            first.signal(SIGKILL)
            #expect(await first.exitStatus() == 128 + SIGKILL)

            // What was running at the kill is still STARTED (or PROGRESS) in Redis.
            let runningAtKill =
                try await f.store.count(state: .started) + (try await f.store.count(state: .progress))
            let doneAtKill = try await f.store.count(state: .success)
            #expect(doneAtKill < total, "the kill came too late to test anything")

            let second = try ExamplesWorkerProcess.start(f, concurrency: 8, lease: 2)
            defer { second.removeOutput() }
            let (ready, pending) = try await f.client.wait(refs, count: total, timeout: .seconds(120))
            #expect(pending.isEmpty)
            #expect(ready.count == total)
            second.signal(SIGTERM)
            #expect(await second.exitStatus() == 0, "\(second.output)")

            #expect(try await f.store.count(state: .success) == total)
            let runs = try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string) ?? []
            let unique = Set(runs)
            #expect(unique == Set(refs.map(\.id)), "every task ran to completion at least once")
            let ranTwice = runs.count - unique.count
            #expect(ranTwice <= runningAtKill)
            print(
                "kill -9 chaos: \(doneAtKill) done and \(runningAtKill) running at the kill; "
                    + "\(ranTwice) of \(total) tasks ran twice")
        }
    }
}
