import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor

/// Celery's own `AsyncResult` reads what the task store writes.
@Suite("TaskStore ↔ Celery AsyncResult")
struct StateCeleryInteropTests {
    /// The venv `scripts/celery-venv` creates (`make test` runs it); the test is skipped without it.
    static var python: String { CeleryPython.path }

    static let script = #"""
        import json, sys
        import redis
        from celery import Celery

        url, prefix, ok_id, fail_id, wait_id, marker = sys.argv[1:7]
        app = Celery("interop", broker="memory://", backend=url)
        app.conf.update(
            task_serializer="json", accept_content=["json"], result_serializer="json",
            result_backend_transport_options={"global_keyprefix": prefix},
        )
        out = {}
        plain = redis.Redis.from_url(url)
        out["plain"] = json.loads(plain.get(prefix + "celery-task-meta-" + ok_id))["result"]
        out["success"] = app.AsyncResult(ok_id).get(timeout=10)
        try:
            app.AsyncResult(fail_id).get(timeout=10)
            out["failure"] = None
        except Exception as e:
            out["failure"] = {"type": type(e).__name__, "args": list(e.args)}
        waited = app.AsyncResult(wait_id)
        out["before"] = waited.state
        plain.set(marker, "1", ex=60)
        out["waited"] = waited.get(timeout=10)
        print(json.dumps(out))
        """#

    @Test(
        "Celery's AsyncResult.get() returns a SUCCESS value, raises a FAILURE with its message, and waits for a result",
        .enabled(if: CeleryPython.isAvailable, Comment(rawValue: CeleryPython.skipMessage)))
    func asyncResultReadsOurMeta() async throws {
        try await StateFixture.with("interop") { f in
            let ok = f.newID()
            let failed = f.newID()
            let waited = f.newID()
            let marker = f.prefix + "python-waiting"

            let okToken = try await f.run(ok)
            _ = try await f.store.finish(ok, token: okToken, outcome: .success(["sum": 5, "items": [1, 2]]))
            let failedToken = try await f.run(failed)
            _ = try await f.store.finish(
                failed, token: failedToken, outcome: .failure(TaskFailure(type: "ImageError", message: "bad pixel")))

            async let output = Self.runPython([TestServers.redisURL, f.prefix, ok, failed, waited, marker])
            // Finish the third task only once Python is waiting for it.
            let deadline = ContinuousClock.now + .seconds(20)
            while try await f.client.get(marker) == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let waitedToken = try await f.run(waited)
            _ = try await f.store.finish(waited, token: waitedToken, outcome: .success("late"))

            let text = try await output
            let line = try #require(text.split(separator: "\n").last, "python printed nothing: \(text)")
            guard case .object(let result) = try JSONValue(json: Array(line.utf8)) else {
                Issue.record("unexpected output: \(text)")
                return
            }
            #expect(result["plain"] == ["sum": 5, "items": [1, 2]])
            #expect(result["success"] == ["sum": 5, "items": [1, 2]])
            #expect(result["failure"] == ["type": "ImageError", "args": ["bad pixel"]])
            #expect(result["before"] == "PENDING")
            #expect(result["waited"] == "late")
        }
    }

    /// Runs the script with `arguments`; returns its standard output, or throws with its output on failure.
    static func runPython(_ arguments: [String]) async throws -> String {
        // ProcessRunner, not Foundation's Process, which leaks on Linux and fails the LeakSanitizer run.
        try await ProcessRunner.run(executable: python, arguments: ["-c", script] + arguments, displayName: "python")
    }
}
