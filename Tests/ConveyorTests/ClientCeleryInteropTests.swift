import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// A real Celery worker (Python) runs a task a Swift client submitted; the Swift ref gets its result.
@Suite("ConveyorClient ↔ Celery worker")
struct ClientCeleryInteropTests {
    static var python: String { StateCeleryInteropTests.python }

    /// A Celery worker that declares the queue as Conveyor does (quorum, delivery limit 5), runs one task and exits
    /// once its result is stored (`task_postrun` comes after the backend wrote it).
    static let worker = #"""
        import os, sys
        from celery import Celery
        from celery.signals import task_postrun
        from kombu import Queue

        broker, backend, prefix, queue = sys.argv[1:5]
        app = Celery("interop", broker=broker, backend=backend)
        app.conf.update(
            task_serializer="json", accept_content=["json"], result_serializer="json",
            result_backend_transport_options={"global_keyprefix": prefix},
            task_queues=[Queue(queue, routing_key=queue,
                               queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 5})],
            broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        )

        @app.task(name="examples.add")
        def add(a, b):
            return a + b

        @task_postrun.connect
        def done(**kwargs):
            sys.stdout.flush()
            os._exit(0)

        app.worker_main(["worker", "--pool=solo", "-Q", queue, "--loglevel=WARNING",
                         "--without-heartbeat", "--without-mingle", "--without-gossip"])
        """#

    @Test(
        "Swift submit → Python Celery worker → ObjectRef.get() returns its result",
        .enabled(
            if: StateCeleryInteropTests.pythonAvailable,
            "no Python venv with celery at \(StateCeleryInteropTests.python) (set CONVEYOR_CELERY_PYTHON)"))
    func celeryWorkerRunsSwiftTask() async throws {
        try await ClientFixture.with("celery-worker") { fixture in
            var configuration = ClientFixture.configuration(prefix: fixture.prefix)
            configuration.followCeleryResultChannels = true
            let client = try await ConveyorClient.connect(configuration)
            let queue = fixture.queue("celery-worker")
            do {
                let ref = try await client.submit(Add.self, .init(a: 2, b: 3), options: .init(queue: queue))
                let exit = try await Self.runWorker([TestServers.amqpURL, TestServers.redisURL, fixture.prefix, queue])
                #expect(exit.status == 0, "worker output: \(exit.output)")
                #expect(try await ref.get(timeout: .seconds(10)) == 5)
                #expect(try await ref.status().state == .success)
            } catch {
                try? await fixture.admin.deleteExchange(queue)
                await client.close()
                throw error
            }
            try? await fixture.admin.deleteExchange(queue)
            await client.close()
        }
    }

    /// Runs the worker script (at most 60 s); its exit status and output.
    static func runWorker(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", worker] + arguments
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-worker-\(UUID()).log")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: output) }
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withThrowingTaskGroup(of: Int32?.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
                    do {
                        try process.run()
                    } catch {
                        process.terminationHandler = nil
                        continuation.resume(throwing: error)
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(60))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let status = first else {
                // Only the process this test started, by its own pid.
                process.terminate()
                throw TestFailure("the Celery worker did not finish within 60 s")
            }
            return status
        }
        try handle.close()
        return (status, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
    }
}
