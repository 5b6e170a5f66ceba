import ConveyorExamples
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// Celery's own Python client sends tasks to a Swift worker and reads their results.
@Suite("Worker ↔ Celery Python client")
struct WorkerCeleryInteropTests {
    /// Sends examples.add by kwargs and by args, and examples.fail, through Celery 5; prints what came back.
    static let client = #"""
        import json, sys
        from celery import Celery
        from kombu import Queue

        broker, backend, prefix, queue = sys.argv[1:5]
        app = Celery("interop", broker=broker, backend=backend)
        app.conf.update(
            task_serializer="json", accept_content=["json"], result_serializer="json",
            result_backend_transport_options={"global_keyprefix": prefix},
            task_queues=[Queue(queue, routing_key=queue, queue_arguments={
                "x-queue-type": "quorum", "x-delivery-limit": 10,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue + ".dlq"})],
            task_default_queue=queue,
        )
        out = {}
        out["kwargs"] = app.send_task("examples.add", kwargs={"a": 2, "b": 3}).get(timeout=10)
        out["args"] = app.send_task("examples.add", args=[2, 3]).get(timeout=10)
        try:
            app.send_task("examples.fail", kwargs={"message": "from swift"}).get(timeout=10)
            out["failure"] = None
        except Exception as e:
            out["failure"] = {"type": type(e).__name__, "text": str(e)}
        result = app.send_task("examples.progress", kwargs={"steps": 2, "delay": 0.01})
        out["progress"] = result.get(timeout=10)
        out["state"] = result.state
        print(json.dumps(out))
        """#

    @Test(
        "Celery send_task(...).get() against a Swift worker: kwargs, args, and a failure raised with its message",
        .enabled(if: CeleryPython.isAvailable, Comment(rawValue: CeleryPython.skipMessage)))
    func pythonClientSwiftWorker() async throws {
        try await WorkerFixture.with("celery-client") { f in
            let output = try await f.withWorker { _ in
                try await ProcessRunner.run(
                    executable: "/usr/bin/timeout",
                    arguments: [
                        "60", CeleryPython.path, "-c", Self.client, TestServers.amqpURL, TestServers.redisURL, f.prefix,
                        f.queue,
                    ],
                    displayName: "celery client")
            }
            let line = try #require(output.split(separator: "\n").last, "no output: \(output)")
            let result = try JSONValue(json: Array(line.utf8))
            guard case .object(let fields) = result else { throw TestSupportError("not an object: \(line)") }
            #expect(fields["kwargs"] == 5)
            #expect(fields["args"] == 5)
            #expect(fields["progress"] == 2)
            #expect(fields["state"] == "SUCCESS")
            guard case .object(let failure)? = fields["failure"] else {
                Issue.record("the failing task did not raise: \(line)")
                return
            }
            #expect(failure["type"] == "ExampleError")
            #expect(failure["text"]?.stringValue?.contains("from swift") == true)
        }
    }
}
