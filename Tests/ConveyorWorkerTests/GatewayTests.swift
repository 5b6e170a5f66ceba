import ConveyorExamples
import ConveyorGateway
import ConveyorTestSupport
import Foundation
import Logging
import ServiceLifecycle
import Testing

@testable import Conveyor

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The HTTP gateway against a real worker: what a client in any language sees.
@Suite("Gateway: the HTTP API")
struct GatewayTests {
    @Test("POST /tasks, then GET its result (waiting) and status: SUCCESS with the value, FAILURE with the error")
    func submitAndRead() async throws {
        try await Self.with("gateway-run") { f, http in
            let (status, accepted, location) = try await http.send(
                "POST", "/tasks", #"{"task": "examples.add", "kwargs": {"a": 2, "b": 3}, "queue": "\#(f.queue)"}"#)
            #expect(status == 202, "\(accepted)")
            let id = try #require(accepted["id"]?.stringValue)
            #expect(accepted["state"] == "PENDING")
            #expect(accepted["queue"]?.stringValue == f.queue)
            #expect(location == "/tasks/\(id)")

            let (resultStatus, result, _) = try await http.send("GET", "/tasks/\(id)/result?wait=60")
            #expect(resultStatus == 200)
            #expect(result["state"] == "SUCCESS")
            #expect(result["result"] == 5)

            let (_, record, _) = try await http.send("GET", "/tasks/\(id)")
            #expect(record["state"] == "SUCCESS")
            #expect(record["name"] == "examples.add")
            #expect(record["source"] == "task-record")

            // Positional args, as Celery's send_task(args=...) sends them.
            let (_, positional, _) = try await http.send(
                "POST", "/tasks", #"{"task": "examples.add", "args": [4, 5], "queue": "\#(f.queue)"}"#)
            let sumID = try #require(positional["id"]?.stringValue)
            #expect(try await http.send("GET", "/tasks/\(sumID)/result?wait=60").1["result"] == 9)

            let (_, failing, _) = try await http.send(
                "POST", "/tasks",
                #"{"task": "examples.fail", "kwargs": {"message": "no thumbnails"}, "queue": "\#(f.queue)"}"#)
            let failingID = try #require(failing["id"]?.stringValue)
            let (failedStatus, failed, _) = try await http.send("GET", "/tasks/\(failingID)/result?wait=60")
            #expect(failedStatus == 200)
            #expect(failed["state"] == "FAILURE")
            #expect(failed["error"]?["message"] == "no thumbnails", "\(failed)")
            #expect(failed["error"]?["type"] == "ExampleError", "\(failed)")

            // A name no worker knows is accepted (as by Celery) and ends FAILURE once a worker dead-letters it.
            let (_, unknown, _) = try await http.send(
                "POST", "/tasks", #"{"task": "examples.nope", "queue": "\#(f.queue)"}"#)
            let unknownID = try #require(unknown["id"]?.stringValue)
            let (_, unknownResult, _) = try await http.send("GET", "/tasks/\(unknownID)/result?wait=60")
            #expect(unknownResult["state"] == "FAILURE")
            #expect(
                unknownResult["error"]?["message"]?.stringValue?.contains("examples.nope") == true, "\(unknownResult)")
        }
    }

    @Test("bad requests are 4xx JSON naming the problem, and nothing reaches the queue")
    func badRequests() async throws {
        // No worker: whatever a bad request let through would still be on the queue at the end.
        try await Self.with("gateway-bad", worker: false, maxBodyBytes: 4_096, maxWait: .seconds(1)) { f, http in
            let q = #""queue": "\#(f.queue)""#
            let cases: [(String, Int, String)] = [
                ("not json", 400, "MalformedJSON"),
                ("[1, 2]", 400, "BadRequest"),
                (#"{"kwargs": {}, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "", \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "kwarg": {"a": 1}, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "kwargs": [1, 2], \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "args": {"a": 1}, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "priority": 12, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "countdown": -1, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "countdown": 1e300, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "expires": 1e300, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "time_limit": 1e18, \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "eta": "tomorrow", \#(q)}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "queue": 7}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "queue": "amq.tasks"}"#, 400, "BadRequest"),
                (#"{"task": "examples.add", "queue": "\#(String(repeating: "q", count: 300))"}"#, 400, "BadRequest"),
                (
                    #"{"task": "examples.add", "kwargs": {"blob": "\#(String(repeating: "x", count: 8_192))"}, \#(q)}"#,
                    413, "PayloadTooLarge"
                ),
            ]
            for (body, expected, type) in cases {
                let (status, answer, _) = try await http.send("POST", "/tasks", body)
                #expect(status == expected, "\(body.prefix(60)): \(answer)")
                #expect(answer["error"]?["type"]?.stringValue == type, "\(body.prefix(60)): \(answer)")
                #expect((answer["error"]?["message"]?.stringValue ?? "").count > 10, "\(answer)")
            }
            let (waitStatus, waitAnswer, _) = try await http.send("GET", "/tasks/some-id/result?wait=soon")
            #expect(waitStatus == 400)
            #expect(waitAnswer["error"]?["message"]?.stringValue?.contains("wait") == true)
            // A wait of 1e300 seconds is cut to the gateway's longest (1 s here), not a crash.
            let (hugeStatus, huge, _) = try await http.send("GET", "/tasks/\(UUID().uuidString)/result?wait=1e300")
            #expect(hugeStatus == 202)
            #expect(huge["timed_out"] == true)
            // Hummingbird's own errors come as JSON too.
            let (missingStatus, missing, _) = try await http.send("GET", "/nowhere")
            #expect(missingStatus == 404)
            #expect(missing["error"]?["type"] == "NotFound", "\(missing)")

            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
            #expect(try await f.admin.queueInfo("amq.tasks") == nil)
            #expect(try await RedisTestKeys.keys(prefix: f.prefix, on: f.redis).isEmpty)
        }
    }

    @Test("a gateway limited to some queues refuses the others with 403, and submits to its own")
    func allowedQueues() async throws {
        try await Self.with("gateway-allowed", allowedQueues: []) { f, http in
            let other = f.queue + "-other"
            let (status, refused, _) = try await http.send(
                "POST", "/tasks", #"{"task": "examples.add", "kwargs": {"a": 1, "b": 1}, "queue": "\#(other)"}"#)
            #expect(status == 403)
            #expect(refused["error"]?["type"] == "QueueNotAllowed", "\(refused)")
            #expect(try await f.admin.queueInfo(other) == nil)
            let (accepted, _, _) = try await http.send(
                "POST", "/tasks", #"{"task": "examples.add", "kwargs": {"a": 1, "b": 1}, "queue": "\#(f.queue)"}"#)
            #expect(accepted == 202)
        }
    }

    @Test("a graceful shutdown ends a long result wait at once with 202 timed_out")
    func shutdownEndsLongPolls() async throws {
        try await Self.with("gateway-shutdown", worker: false) { f, http in
            let id = UUID().uuidString
            let poll = Task { try await http.send("GET", "/tasks/\(id)/result?wait=120") }
            try await eventually("the wait to start", timeout: .seconds(30)) {
                f.client.waiters.outstandingIDs.contains(id)
            }
            let started = ContinuousClock.now
            await http.stopGateway()
            let (status, answer, _) = try await poll.value
            #expect(status == 202, "\(answer)")
            #expect(answer["timed_out"] == true)
            #expect(ContinuousClock.now - started < .seconds(10), "the wait outlived the shutdown")
        }
    }

    @Test("a task not due yet: 202 while waiting, DELETE revokes it, then the result is REVOKED")
    func cancelBeforeRun() async throws {
        try await Self.with("gateway-cancel") { f, http in
            let (_, accepted, _) = try await http.send(
                "POST", "/tasks",
                #"{"task": "examples.add", "kwargs": {"a": 1, "b": 1}, "countdown": 600, "queue": "\#(f.queue)"}"#)
            let id = try #require(accepted["id"]?.stringValue)
            let (pendingStatus, pending, _) = try await http.send("GET", "/tasks/\(id)/result")
            #expect(pendingStatus == 202)
            #expect(pending["state"] != "SUCCESS")
            let (waitedStatus, waited, _) = try await http.send("GET", "/tasks/\(id)/result?wait=0.2")
            #expect(waitedStatus == 202)
            #expect(waited["timed_out"] == true)

            let (cancelStatus, cancelled, _) = try await http.send("DELETE", "/tasks/\(id)?reason=not%20needed")
            #expect(cancelStatus == 200)
            #expect(cancelled["outcome"] == "revoked", "\(cancelled)")
            let (revokedStatus, revoked, _) = try await http.send("GET", "/tasks/\(id)/result")
            #expect(revokedStatus == 200)
            #expect(revoked["state"] == "REVOKED")
            #expect(revoked["reason"] == "not needed", "\(revoked)")

            // An unknown id is PENDING, as in Celery.
            let (_, unknown, _) = try await http.send("GET", "/tasks/\(UUID().uuidString)")
            #expect(unknown["state"] == "PENDING")
            #expect(unknown["source"] == "none")
        }
    }

    @Test("the same idempotency key twice gives the same id; /healthz says both servers answer")
    func idempotencyAndHealth() async throws {
        try await Self.with("gateway-idem") { f, http in
            let body =
                #"{"task": "examples.add", "kwargs": {"a": 3, "b": 4}, "queue": "\#(f.queue)", "idempotency_key": "order-\#(UUID().uuidString)"}"#
            let first = try #require(try await http.send("POST", "/tasks", body).1["id"]?.stringValue)
            let second = try #require(try await http.send("POST", "/tasks", body).1["id"]?.stringValue)
            #expect(first == second)
            #expect(try await http.send("GET", "/tasks/\(first)/result?wait=60").1["result"] == 7)

            let (status, health, _) = try await http.send("GET", "/healthz")
            #expect(status == 200)
            #expect(health["status"] == "ok")
            #expect(health["redis"] == "ok")
            #expect(health["broker"] == "ok")
        }
    }

    @Test("conveyor gateway: serves on the port it logs, with its metrics; SIGTERM stops it cleanly")
    func commandLine() async throws {
        let executable = try #require(CLIBinary.path, "conveyor is not built")
        let gateway = try ProcessRunner.start(
            executable: executable,
            arguments: ["gateway", "--port", "0", "--metrics-port", "0", "--log-level", "notice"],
            environment: ["CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL])
        defer {
            gateway.signal(SIGKILL)
            gateway.removeOutput()
        }
        let (base, metrics) = try await eventuallyValue("both addresses in the log", timeout: .seconds(60)) {
            () -> (String, String)? in
            let lines = gateway.output.split(separator: "\n")
            guard let api = lines.first(where: { $0.contains("gateway listening") }).flatMap(Self.address),
                let scrape = lines.first(where: { $0.contains("metrics endpoint listening") }).flatMap(Self.address)
            else { return nil }
            return (api, scrape)
        }
        let http = HTTPClient(base: base)
        let (status, health, _) = try await http.send("GET", "/healthz")
        #expect(status == 200, "\(health)")
        var request = URLRequest(url: try #require(URL(string: metrics)))
        request.timeoutInterval = 30
        let (data, _) = try await URLSession.shared.data(for: request)
        let exposition = String(decoding: data, as: UTF8.self)
        #expect(exposition.contains(#"hb_requests{http_route="/healthz""#), "\(exposition)")

        gateway.signal(SIGTERM)
        #expect(await gateway.exitStatus() == 0, "\(gateway.output)")
    }

    /// The `http://…` address in a log line, up to the next blank or quote.
    static func address(_ line: Substring) -> String? {
        guard let start = line.range(of: "http://") else { return nil }
        return String(line[start.lowerBound...].prefix { !$0.isWhitespace && $0 != "\"" && $0 != "]" })
    }

    // MARK: - Support

    /// A worker on the fixture's queue (unless `worker` is false) and a gateway on a free port, for `body`'s
    /// duration. `allowedQueues` adds the fixture's queue to the names given.
    static func with(
        _ name: String, worker: Bool = true, maxBodyBytes: Int? = nil, maxWait: Duration? = nil,
        allowedQueues: Set<String>? = nil, _ body: (WorkerFixture, HTTPClient) async throws -> Void
    ) async throws {
        try await WorkerFixture.with(name) { f in
            var configuration = ConveyorGateway.Configuration(port: 0)
            if let maxBodyBytes { configuration.maxBodyBytes = maxBodyBytes }
            if let maxWait { configuration.maxWait = maxWait }
            configuration.allowedQueues = allowedQueues.map { $0.union([f.queue]) }
            if worker {
                try await f.withWorker { _ in try await Self.serve(f, configuration, body) }
            } else {
                try await Self.serve(f, configuration, body)
            }
        }
    }

    static func serve(
        _ f: WorkerFixture, _ configuration: ConveyorGateway.Configuration,
        _ body: (WorkerFixture, HTTPClient) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test.gateway")
        logger.logLevel = .warning
        let port = AsyncStream.makeStream(of: Int.self)
        let gateway = ConveyorGateway(client: f.client, configuration: configuration, logger: logger) {
            port.continuation.yield($0)
        }
        let group = ServiceGroup(configuration: .init(services: [gateway], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // A gateway that cannot start ends the port stream, so the test fails instead of hanging.
                defer { port.continuation.finish() }
                try await group.run()
            }
            var ports = port.stream.makeAsyncIterator()
            let result: Result<Void, any Error>
            if let bound = await ports.next() {
                do {
                    let http = HTTPClient(base: "http://127.0.0.1:\(bound)") { await group.triggerGracefulShutdown() }
                    try await body(f, http)
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
            } else {
                result = .failure(GatewayTestError.noPort)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try result.get()
        }
    }

    enum GatewayTestError: Error {
        case noPort
    }

    /// Just enough of an HTTP client: a method, a path, a JSON body; the status, the JSON answer, the Location.
    struct HTTPClient {
        let base: String
        /// Starts the gateway's graceful shutdown (the helper starts it anyway once the test's body returns).
        var stopGateway: @Sendable () async -> Void = {}

        func send(
            _ method: String, _ path: String, _ body: String? = nil
        ) async throws -> (
            Int, JSONValue, String?
        ) {
            var request = URLRequest(url: try #require(URL(string: base + path)))
            request.httpMethod = method
            request.timeoutInterval = 90
            if let body {
                request.httpBody = Data(body.utf8)
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            }
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            let json = data.isEmpty ? JSONValue.null : try JSONValue(json: Array(data))
            return (http.statusCode, json, http.value(forHTTPHeaderField: "Location"))
        }
    }
}

extension JSONValue {
    /// A field of an object; `nil` for other values and missing fields.
    fileprivate subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }
}
