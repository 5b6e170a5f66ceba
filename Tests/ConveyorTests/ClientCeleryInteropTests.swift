import ConveyorAMQP
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// A real Celery worker (Python) runs a task a Swift client submitted; the Swift ref gets its result.
@Suite("ConveyorClient ↔ Celery worker")
struct ClientCeleryInteropTests {
    /// The venv `scripts/celery-venv` creates (`make test` runs it); the test is skipped without it.
    static var python: String { CeleryPython.path }

    /// A Celery worker that declares the queue as Conveyor does (quorum, delivery limit 10, dead letters to
    /// `<queue>.dlq`: see `TaskQueueTopology`), runs one task and exits once its result is stored (`task_postrun`
    /// comes after the backend wrote it).
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
                               queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": 10,
                                                "x-dead-letter-exchange": "",
                                                "x-dead-letter-routing-key": queue + ".dlq"})],
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
        .enabled(if: CeleryPython.isAvailable, Comment(rawValue: CeleryPython.skipMessage)))
    func celeryWorkerRunsSwiftTask() async throws {
        try await ClientFixture.with("celery-worker") { fixture in
            var configuration = ClientFixture.configuration(prefix: fixture.prefix)
            configuration.followCeleryResultChannels = true
            let client = try await ConveyorClient.connect(configuration)
            let queue = fixture.queue("celery-worker")
            do {
                let ref = try await client.submit(Add.self, .init(a: 2, b: 3), options: .init(queue: queue))
                _ = try await Self.runWorker([TestServers.amqpURL, TestServers.redisURL, fixture.prefix, queue])
                #expect(try await ref.get(timeout: .seconds(10)) == 5)
                #expect(try await ref.status().state == .success)
            } catch {
                await Self.deleteCeleryTopology(queue, admin: fixture.admin)
                await client.close()
                throw error
            }
            await Self.deleteCeleryTopology(queue, admin: fixture.admin)
            await client.close()
        }
    }

    /// Deletes what the Celery worker declared besides the queue: the exchange named after it, and the 28 queues
    /// and 29 exchanges of Celery's native delayed delivery, which a Celery 5.5+ worker declares whenever one of
    /// its queues is a quorum queue. No other test uses those names, so deleting them here leaves nothing behind.
    static func deleteCeleryTopology(_ queue: String, admin: AMQPConnection) async {
        try? await admin.deleteExchange(queue)
        for level in 0..<28 {
            _ = try? await admin.deleteQueue("celery_delayed_\(level)")
            try? await admin.deleteExchange("celery_delayed_\(level)")
        }
        try? await admin.deleteExchange("celery_delayed_delivery")
    }

    /// Runs the worker script, for at most 60 s (`timeout` ends it); its output.
    ///
    /// - Throws: ``PrivateServerError`` with the worker's output when it fails or runs too long.
    static func runWorker(_ arguments: [String]) async throws -> String {
        // ProcessRunner, not Foundation's Process, which leaks on Linux and fails the LeakSanitizer run.
        try await ProcessRunner.run(
            executable: "/usr/bin/timeout", arguments: ["60", python, "-c", worker] + arguments,
            displayName: "celery worker")
    }
}
