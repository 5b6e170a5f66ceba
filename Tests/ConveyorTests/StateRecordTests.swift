import ConveyorRedis
import Foundation
import Testing

@testable import Conveyor

@Suite("TaskStore finish, progress, fail, revoke")
struct StateRecordTests {
    /// The keys Celery 5.7 wrote (Fixtures/celery-5.7-results.json).
    static func fixture() throws -> [String: JSONValue] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/celery-5.7-results.json")
        guard case .object(let fields) = try JSONValue(json: Data(contentsOf: url)) else {
            throw TestFailure("fixture is not an object")
        }
        return fields
    }

    static func keys(_ value: JSONValue?) -> Set<String> {
        if case .object(let fields)? = value { return Set(fields.keys) }
        return []
    }

    @Test("finish SUCCESS writes Celery's meta (keys, order, TTL) and publishes it and the client notification")
    func finishSuccess() async throws {
        try await StateFixture.with("finish-success") { f in
            let id = f.newID()
            let client = "client-\(f.newID())"
            let subscriber = try await f.client.subscriber
            let metaChannel = try await subscriber.subscribe([f.keys.result(id)])
            let notifyChannel = try await subscriber.subscribe([f.keys.notify(client)])
            let token = try await f.run(id)
            let now = StateFixture.t0 + 1_234
            let outcome = try await f.store.finish(
                id, token: token, outcome: .success(json: Array(#"{"sum":5}"#.utf8)), replyTo: client, now: now)
            #expect(outcome == .recorded)

            let raw = try #require(try await f.client.getString(f.keys.result(id)))
            // Celery's own key order and separators.
            #expect(
                raw.hasPrefix(
                    #"{"status": "SUCCESS", "result": {"sum":5}, "traceback": null, "children": [], "date_done": ""#))
            #expect(raw.hasSuffix(#", "task_id": "\#(id)"}"#))
            let written = try #require(try await f.metaObject(id))
            let fixture = try Self.fixture()
            #expect(Set(written.keys) == Self.keys(fixture["success"]))
            #expect(written["date_done"]?.stringValue == CeleryDate.format(MillisecondClock.date(now)))
            let ttl = try await f.client.send(RedisCommand("TTL", f.keys.result(id))).int ?? -1
            #expect(ttl > 86_000 && ttl <= 86_400)

            let published = try #require(await firstMessage(metaChannel))
            #expect(published.string == raw)
            let notified = try #require(await firstMessage(notifyChannel))
            #expect(notified.string == id + "\n" + raw, "the notification carries the meta")

            let status = try await f.store.status(id)
            #expect(status.state == .success)
            #expect(status.finishedMs == now)
            #expect(status.leaseOwner == nil)
            #expect(status.error == nil)
            #expect(try await f.store.list(state: .success).map(\.id) == [id])
            #expect(try await f.store.list(state: .started).isEmpty)
        }
    }

    @Test("finish FAILURE writes exc_type, exc_message, exc_module in Celery's shape")
    func finishFailure() async throws {
        try await StateFixture.with("finish-failure") { f in
            let id = f.newID()
            let token = try await f.run(id)
            let failure = TaskFailure(type: "ImageError", message: "bad \"pixel\"\nat 3")
            #expect(try await f.store.finish(id, token: token, outcome: .failure(failure)) == .recorded)
            let written = try #require(try await f.metaObject(id))
            let fixture = try Self.fixture()
            #expect(Set(written.keys) == Self.keys(fixture["failure"]))
            guard case .object(let fixtureFailure)? = fixture["failure"] else { throw TestFailure("fixture") }
            #expect(Self.keys(written["result"]) == Self.keys(fixtureFailure["result"]))
            #expect(written["status"] == "FAILURE")
            #expect(
                written["result"] == [
                    "exc_type": "ImageError", "exc_message": ["bad \"pixel\"\nat 3"], "exc_module": "conveyor",
                ])
            #expect(written["traceback"]?.stringValue?.contains("ImageError: bad") == true)
            let status = try await f.store.status(id)
            #expect(status.state == .failure)
            #expect(status.error == failure)
            #expect(try await f.store.resultMeta(id)?.failure == failure)
        }
    }

    @Test("ignore_result records the state without a meta; extended fields follow Celery's result_extended")
    func storeResultAndExtended() async throws {
        try await StateFixture.with("finish-extended") { f in
            let ignored = f.newID()
            let token = try await f.run(ignored)
            _ = try await f.store.finish(ignored, token: token, outcome: .success(1), storeResult: false)
            #expect(try await f.store.status(ignored).state == .success)
            #expect(try await f.store.resultMeta(ignored) == nil)

            let id = f.newID()
            let second = try await f.run(id)
            let extended = CeleryResultMeta.Extended(
                name: "examples.add", args: [2, 3], kwargs: [:], worker: "w1", retries: 0, queue: "celery")
            _ = try await f.store.finish(id, token: second, outcome: .success(5), extended: extended)
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.extended == extended)
            #expect(meta.result == 5)
            #expect(meta.taskID == id)
        }
    }

    @Test("progress: state PROGRESS with fraction and message, Celery PROGRESS meta, fenced for a stale token")
    func progress() async throws {
        try await StateFixture.with("progress") { f in
            let id = f.newID()
            let token = try await f.run(id)
            let progress = TaskProgress(current: 3, total: 4, message: "step 3")
            #expect(try await f.store.progress(id, token: token, progress, now: StateFixture.t0 + 10) == .recorded)
            let status = try await f.store.status(id)
            #expect(status.state == .progress)
            #expect(status.progress?.fraction == 0.75)
            #expect(status.progress?.message == "step 3")
            let written = try #require(try await f.metaObject(id))
            #expect(written["status"] == "PROGRESS")
            let result = try #require(written["result"])
            #expect(result.objectField("current")?.doubleValue == 3)
            #expect(result.objectField("total")?.doubleValue == 4)
            #expect(result.objectField("fraction")?.doubleValue == 0.75)
            #expect(result.objectField("message") == "step 3")
            #expect(StateRecordTests.keys(result) == ["current", "total", "fraction", "message"])
            #expect(written["date_done"] == .null)
            #expect(try await f.store.list(state: .progress).map(\.id) == [id])
            #expect(try await f.store.list(state: .started).isEmpty)
            #expect(try await f.store.progress(id, token: token + 1000, progress) == .fenced)
            // The run still finishes from PROGRESS.
            #expect(try await f.store.finish(id, token: token, outcome: .success(nil)) == .recorded)
            #expect(try await f.store.list(state: .progress).isEmpty)
        }
    }

    @Test("fail without a lease: FAILURE with the reason; an outcome or a live run is not overwritten")
    func fail() async throws {
        try await StateFixture.with("fail") { f in
            let id = f.newID()
            let client = "client-\(f.newID())"
            let notify = try await f.client.subscriber.subscribe([f.keys.notify(client)])
            let error = TaskFailure(type: "UnknownTask", message: "no worker knows task 'x.y'")
            let outcome = try await f.store.fail(
                id, error: error, reason: "unknown task", name: "x.y", queue: "celery", replyTo: client)
            #expect(outcome == .recorded)
            let status = try await f.store.status(id)
            #expect(status.state == .failure)
            #expect(status.reason == "unknown task")
            #expect(status.error == error)
            #expect(status.name == "x.y")
            #expect(try await f.store.resultMeta(id)?.failure == error)
            #expect(await firstMessage(notify)?.string.hasPrefix(id + "\n{") == true)

            let done = f.newID()
            let token = try await f.run(done)
            _ = try await f.store.finish(done, token: token, outcome: .success(1))
            #expect(try await f.store.fail(done, error: error, reason: "r") == .alreadyFinished(.success))
            #expect(try await f.store.resultMeta(done)?.result == 1)

            let running = f.newID()
            _ = try await f.run(running, worker: "w9", now: StateFixture.t0, lease: .seconds(10))
            #expect(
                try await f.store.fail(running, error: error, reason: "r", now: StateFixture.t0 + 1)
                    == .leasedElsewhere(owner: "w9", untilMs: StateFixture.t0 + 10_000))
        }
    }

    @Test("revoke before start marks REVOKED at once and unschedules; after finish it reports the outcome")
    func revoke() async throws {
        try await StateFixture.with("revoke") { f in
            let id = f.newID()
            try await f.store.schedule(id, dueMs: StateFixture.t0 + 60_000, message: sampleMessage(id))
            #expect(try await f.store.revoke(id, reason: "not needed", now: StateFixture.t0) == .revoked)
            #expect(try await f.store.status(id).state == .revoked)
            #expect(try await f.store.scheduledTime(id) == nil)
            #expect(try await f.store.promoteDue(now: StateFixture.t0 + 120_000).isEmpty)
            let meta = try #require(try await f.store.resultMeta(id))
            #expect(meta.failure == TaskFailure(type: "TaskRevokedError", message: "not needed"))
            // Its message still arrives: the claim skips it.
            #expect(try await f.claim(id) == .alreadyFinished(.revoked))
            let ttl = try await f.client.send(RedisCommand("TTL", f.keys.revoked(id))).int ?? -1
            #expect(ttl > 86_400 && ttl <= 7 * 86_400)

            let done = f.newID()
            let token = try await f.run(done)
            _ = try await f.store.finish(done, token: token, outcome: .success(1))
            #expect(try await f.store.revoke(done) == .alreadyFinished(.success))
            #expect(try await f.store.status(done).state == .success)
        }
    }

    @Test("a run stopped by revocation records REVOKED through finish")
    func finishRevoked() async throws {
        try await StateFixture.with("finish-revoked") { f in
            let id = f.newID()
            let token = try await f.run(id)
            #expect(try await f.store.finish(id, token: token, outcome: .revoked(reason: "stop")) == .recorded)
            let status = try await f.store.status(id)
            #expect(status.state == .revoked)
            #expect(status.reason == "stop")
            #expect(try await f.store.resultMeta(id)?.failure == TaskFailure(type: "TaskRevokedError", message: "stop"))
        }
    }
}
