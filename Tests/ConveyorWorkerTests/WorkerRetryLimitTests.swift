import ConveyorExamples
import ConveyorIO
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

/// A task that fails its first `failures` runs, counting runs per task id.
enum Flaky: TaskDefinition {
    static let name = "tests.flaky"
    struct Input: Codable, Sendable { var failures: Int }
    typealias Output = Int
}

/// A task that asks to be retried every time.
enum AlwaysRetry: TaskDefinition {
    static let name = "tests.always-retry"
    struct Input: Codable, Sendable {}
    typealias Output = Int
}

/// A task that ignores cancellation: it waits on an inner task nobody cancels.
enum Stubborn: TaskDefinition {
    static let name = "tests.stubborn"
    struct Input: Codable, Sendable { var seconds: Double }
    typealias Output = Double
}

@Suite("Worker: retries and time limits")
struct WorkerRetryLimitTests {
    static func registry(runs: LockedValue<[String: Int]>) -> TaskRegistry {
        var registry = Examples.registry
        let fast = RetryPolicy(
            maxRetries: 3, retryOnError: true, initialDelay: .milliseconds(50), maxDelay: .milliseconds(200))
        registry.register(Flaky.self, options: .init(retry: fast)) { input, context in
            let run = runs.withLock { runs in
                runs[context.id, default: 0] += 1
                return runs[context.id, default: 0]
            }
            #expect(context.retries == run - 1)
            if run <= input.failures { throw Examples.ExampleError(message: "flaky run \(run)") }
            return run
        }
        registry.register(AlwaysRetry.self, options: .init(retry: RetryPolicy(maxRetries: 2))) { _, context in
            throw context.retry(after: .milliseconds(30), reason: "not yet")
        }
        registry.register(Stubborn.self) { input, _ in
            let inner = Task { try? await Task.sleep(for: .milliseconds(Int64(input.seconds * 1000))) }
            await inner.value
            return input.seconds
        }
        return registry
    }

    @Test("a failing task is retried with backoff through the delay set (RETRY, then SUCCESS)")
    func retriesThenSucceeds() async throws {
        let runs = LockedValue<[String: Int]>([:])
        try await WorkerFixture.with("retry") { f in
            try await f.withWorker(registry: Self.registry(runs: runs)) { _ in
                let ref = try await f.client.submit(Flaky.self, .init(failures: 2), options: .init(queue: f.queue))
                let retrying = try await f.awaitState(ref.id, .retry)
                #expect(retrying.error?.message.hasPrefix("flaky run") == true)
                #expect(try await ref.get(timeout: .seconds(15)) == 3)
                let status = try await ref.status()
                #expect(status.state == .success)
                #expect(status.retries == 2)
                #expect(runs.withLock { $0[ref.id] } == 3)
            }
        }
    }

    @Test("retries past max_retries end in FAILURE with the last error")
    func retriesExhausted() async throws {
        let runs = LockedValue<[String: Int]>([:])
        try await WorkerFixture.with("retry-max") { f in
            try await f.withWorker(registry: Self.registry(runs: runs)) { _ in
                let flaky = try await f.client.submit(Flaky.self, .init(failures: 10), options: .init(queue: f.queue))
                let error = await #expect(throws: TaskError.self) { try await flaky.get(timeout: .seconds(15)) }
                #expect(error?.message == "flaky run 4")
                #expect(runs.withLock { $0[flaky.id] } == 4)

                let asking = try await f.client.submit(AlwaysRetry.self, .init(), options: .init(queue: f.queue))
                let asked = await #expect(throws: TaskError.self) { try await asking.get(timeout: .seconds(15)) }
                #expect(asked?.type == "MaxRetriesExceededError")
                #expect(asked?.message.contains("not yet") == true)
                #expect(try await asking.status().retries == 2)
            }
        }
    }

    @Test("the backoff grows exponentially, is capped, and jitter keeps it within [delay/2, delay]")
    func backoff() {
        let policy = RetryPolicy(initialDelay: .seconds(1), multiplier: 2, maxDelay: .seconds(10), jitter: false)
        #expect(policy.delay(afterRetries: 0) == .seconds(1))
        #expect(policy.delay(afterRetries: 3) == .seconds(8))
        #expect(policy.delay(afterRetries: 9) == .seconds(10))
        let jittered = RetryPolicy(initialDelay: .seconds(4), jitter: true)
        for _ in 0..<50 {
            let delay = jittered.delay(afterRetries: 0)
            #expect(delay >= .seconds(2) && delay <= .seconds(4))
        }
    }

    @Test("a soft time limit cancels the Swift task and records SoftTimeLimitExceeded")
    func softLimit() async throws {
        try await WorkerFixture.with("soft") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(
                    Examples.Sleep.self, .init(seconds: 30),
                    options: .init(queue: f.queue, timeLimit: .init(soft: 0.2)))
                let error = await #expect(throws: TaskError.self) { try await ref.get(timeout: .seconds(10)) }
                #expect(error?.type == "SoftTimeLimitExceeded")
            }
        }
    }

    @Test("a hard time limit records TimeLimitExceeded and frees the slot even when the code ignores cancellation")
    func hardLimit() async throws {
        let runs = LockedValue<[String: Int]>([:])
        try await WorkerFixture.with("hard") { f in
            try await f.withWorker(f.workerConfiguration(concurrency: 1), registry: Self.registry(runs: runs)) {
                worker in
                let stubborn = try await f.client.submit(
                    Stubborn.self, .init(seconds: 20), options: .init(queue: f.queue, timeLimit: .init(hard: 0.3)))
                let error = await #expect(throws: TaskError.self) { try await stubborn.get(timeout: .seconds(10)) }
                #expect(error?.type == "TimeLimitExceeded")
                // The only slot is free again although the stubborn code still waits.
                let next = try await f.client.submit(
                    Examples.Add.self, .init(a: 1, b: 2), options: .init(queue: f.queue))
                #expect(try await next.get(timeout: .seconds(10)) == 3)
                #expect(worker.runningTaskIDs.isEmpty)
            }
        }
    }

    @Test("a message with a future eta waits in the delay set and runs when due")
    func etaIsDelayed() async throws {
        try await WorkerFixture.with("eta") { f in
            try await f.withWorker { _ in
                // Long enough that a delivery slowed down by a loaded machine still arrives before the eta.
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 1, b: 1), options: .init(queue: f.queue, countdown: 4.0))
                try await eventually("the task waiting in the delay set") {
                    try await f.store.scheduledTime(ref.id) != nil
                }
                #expect(try await ref.status().state == .pending)
                #expect(try await ref.get(timeout: .seconds(20)) == 2)
                #expect(try await f.store.scheduledTime(ref.id) == nil)
            }
        }
    }
}
