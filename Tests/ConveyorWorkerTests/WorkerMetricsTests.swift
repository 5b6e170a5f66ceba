import ConveyorExamples
import ConveyorIO
import ConveyorTestSupport
import CoreMetrics
import Foundation
import MetricsTestKit
import Testing

@testable import Conveyor
@testable import ConveyorWorker

/// The process's metrics backend for the tests: bootstrapped once (swift-metrics allows one bootstrap per process).
/// Tests read only the series of task names and queues of their own.
enum SharedTestMetrics {
    static let factory: TestMetrics = {
        let factory = TestMetrics()
        MetricsSystem.bootstrap(factory)
        return factory
    }()
}

@Suite("Worker: metrics")
struct WorkerMetricsTests {
    @Test("received, started, succeeded, failed and retried counters, run time and time queued, per task")
    func countsTaskEvents() async throws {
        let metrics = SharedTestMetrics.factory
        let flaky = "tests.metrics-flaky-\(UUID().uuidString.prefix(8))"
        let failing = "tests.metrics-fail-\(UUID().uuidString.prefix(8))"
        var registry = TaskRegistry()
        let runs = LockedValue(0)
        registry.register(
            name: flaky,
            options: .init(retry: RetryPolicy(maxRetries: 1, retryOnError: true, initialDelay: .milliseconds(20)))
        ) { _, _, _ in
            let run = runs.withLock { runs in
                runs += 1
                return runs
            }
            if run == 1 { throw Examples.ExampleError(message: "first run fails") }
            return .int(Int64(run))
        }
        registry.register(name: failing) { _, _, _ in throw Examples.ExampleError(message: "always") }

        try await WorkerFixture.with("metrics") { f in
            try await f.withWorker(registry: registry) { _ in
                let ok = try await f.client.submit(name: flaky, options: .init(queue: f.queue))
                #expect(try await ok.get(timeout: .seconds(10)) == 2)
                let bad = try await f.client.submit(name: failing, options: .init(queue: f.queue))
                await #expect(throws: TaskError.self) { try await bad.get(timeout: .seconds(10)) }
            }
            func total(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
                metrics.counterTotal(label: label, dimensions: dimensions)
            }
            #expect(total("conveyor_tasks_received_total", [("queue", f.queue)]) == 3)
            #expect(total("conveyor_tasks_started_total", [("task", flaky)]) == 2)
            #expect(total("conveyor_tasks_retried_total", [("task", flaky)]) == 1)
            #expect(total("conveyor_tasks_succeeded_total", [("task", flaky)]) == 1)
            #expect(total("conveyor_tasks_failed_total", [("task", failing), ("reason", "error")]) == 1)
            #expect(total("conveyor_tasks_succeeded_total", [("task", failing)]) == 0)
            let runTimes = try metrics.expectTimer("conveyor_task_run_seconds", [("task", flaky)])
            #expect(runTimes.values.count == 2)
            let queued = try metrics.expectTimer("conveyor_task_queued_seconds", [("task", flaky)])
            #expect(queued.values.count >= 1)
        }
    }
}
