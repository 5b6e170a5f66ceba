import Conveyor
import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import ConveyorWorker
import Foundation
import Testing

/// The `conveyor` command-line tool, run as a process against the shared servers.
///
/// The binary is the one the package build put next to the test bundle (`swift build --build-tests` and
/// `swift test` build every product); the suite is skipped, saying so, when it is not there.
@Suite(
    .enabled(
        if: CLIBinary.path != nil, "the conveyor binary is not built next to the tests (swift build --build-tests)"))
struct CLITests {
    /// The servers the tests use, for the tool's environment.
    static var environment: [String: String] {
        ["CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL]
    }

    /// What a run printed (standard output and error interleaved) and its exit status.
    struct Run {
        var status: Int32
        var output: String
    }

    static func conveyor(_ arguments: String..., environment extra: [String: String] = [:]) async throws -> Run {
        let binary = try #require(CLIBinary.path)
        do {
            let output = try await ProcessRunner.run(
                executable: binary, arguments: arguments, environment: environment.merging(extra) { $1 })
            return Run(status: 0, output: output)
        } catch let error as PrivateServerError {
            return Run(status: error.exitStatus, output: error.output)
        }
    }

    static func client() async throws -> ConveyorClient {
        try await ConveyorClient.connect(
            ConveyorConfiguration(brokerURLs: [TestServers.amqpURL], redisURL: TestServers.redisURL))
    }

    /// Deletes `queue` and its dead-letter queue.
    static func deleteQueues(_ queue: String, client: ConveyorClient) async {
        _ = try? await client.broker.deleteQueue(queue)
        _ = try? await client.broker.deleteQueue(client.configuration.topology.deadLetterQueue(for: queue))
    }

    @Test("submit by name puts one message, with its arguments and idempotency key, in the queue")
    func submitPublishes() async throws {
        let client = try await Self.client()
        let queue = TestServers.uniqueName("cli-submit")
        // The key is reserved in Redis for a day: a prefix of the test's own keeps reruns independent.
        let prefix = TestServers.uniqueName("cli-submit") + ":"
        do {
            let run = try await Self.conveyor(
                "submit", "examples.add", "--kwargs", #"{"a": 2, "b": 3}"#, "--queue", queue, "--idempotency-key",
                "order-17", "--json", environment: ["CONVEYOR_PREFIX": prefix])
            #expect(run.status == 0, "\(run.output)")
            let printed = try JSONValue(json: Array(run.output.utf8))
            let id = try #require(printed.objectValue?["id"]?.stringValue)
            #expect(printed.objectValue?["queue"] == .string(queue))

            #expect(try await client.broker.queueInfo(queue)?.messageCount == 1)
            let consumer = try await client.broker.consume(queue: queue, prefetch: 1)
            var iterator = consumer.makeAsyncIterator()
            let delivery = try #require(try await iterator.next())
            let headers = delivery.properties.headers.jsonFields
            #expect(headers["id"] == .string(id))
            #expect(headers["task"] == .string("examples.add"))
            #expect(headers["conveyor_idempotency_key"] == .string("order-17"))
            let body = try JSONValue(json: delivery.body)
            guard case .array(let parts) = body, parts.count >= 2 else {
                Issue.record("unexpected body \(body)")
                return
            }
            #expect(parts[1] == ["a": 2, "b": 3])
            _ = delivery.ack()
            await consumer.cancel()

            // The same key again names the same task and publishes nothing.
            let again = try await Self.conveyor(
                "submit", "examples.add", "--kwargs", #"{"a": 2, "b": 3}"#, "--queue", queue, "--idempotency-key",
                "order-17", environment: ["CONVEYOR_PREFIX": prefix])
            #expect(again.output.trimmingCharacters(in: .whitespacesAndNewlines) == id, "\(again.output)")
            #expect(try await client.broker.queueInfo(queue)?.messageCount == 0)
        } catch {
            Issue.record(error)
        }
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
        await Self.deleteQueues(queue, client: client)
        await client.close()
    }

    @Test("submit --countdown parks the task in the delay set, and inspect scheduled lists it")
    func countdownAndInspectScheduled() async throws {
        let client = try await Self.client()
        let queue = TestServers.uniqueName("cli-scheduled")
        let prefix = TestServers.uniqueName("cli-scheduled") + ":"
        let environment = ["CONVEYOR_PREFIX": prefix]
        do {
            let run = try await Self.conveyor(
                "submit", "examples.add", "--kwargs", #"{"a": 1, "b": 1}"#, "--queue", queue, "--countdown", "600",
                "--priority", "3", "--expires", "900", "--json", environment: environment)
            #expect(run.status == 0, "\(run.output)")
            let id = try #require(try JSONValue(json: Array(run.output.utf8)).objectValue?["id"]?.stringValue)
            #expect(try await client.broker.queueInfo(queue)?.messageCount == 0, "a delayed task is not published yet")

            let listed = try await Self.conveyor("inspect", "scheduled", "--json", environment: environment)
            #expect(listed.status == 0, "\(listed.output)")
            let object = try JSONValue(json: Array(listed.output.utf8)).objectValue
            #expect(object?["total"] == 1)
            guard case .array(let tasks)? = object?["tasks"], let task = tasks.first?.objectValue else {
                throw TestSupportError("no tasks in \(listed.output)")
            }
            #expect(task["id"] == .string(id))
            #expect(task["name"] == "examples.add")
            #expect(task["queue"] == .string(queue))
            let due = try #require(task["due_ms"]?.intValue)
            let expected = Int64(Date().timeIntervalSince1970 * 1000) + 600_000
            #expect(abs(due - expected) < 30_000, "due \(due), expected about \(expected)")

            let table = try await Self.conveyor("inspect", "scheduled", environment: environment)
            #expect(table.output.contains(id) && table.output.contains("examples.add"), "\(table.output)")

            let full = try await Self.conveyor(
                "submit", "examples.add", "--queue", queue, "--max-queued", "0", environment: environment)
            #expect(full.status != 0)
            #expect(full.output.contains("is full"), "\(full.output)")
        } catch {
            Issue.record(error)
        }
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
        await Self.deleteQueues(queue, client: client)
        await client.close()
    }

    @Test("status of an id Redis does not know is PENDING")
    func statusOfUnknownID() async throws {
        let id = UUID().uuidString.lowercased()
        let run = try await Self.conveyor("status", id, "--json")
        #expect(run.status == 0, "\(run.output)")
        let status = try JSONValue(json: Array(run.output.utf8)).objectValue
        #expect(status?["id"] == .string(id))
        #expect(status?["state"] == .string("PENDING"))
        #expect(status?["source"] == .string("none"))
    }

    @Test("cancel revokes a task that has not run, and status then says REVOKED")
    func cancelRevokes() async throws {
        let id = UUID().uuidString.lowercased()
        let prefix = TestServers.uniqueName("cli-cancel") + ":"
        let run = try await Self.conveyor(
            "cancel", id, "--reason", "not needed", "--json", environment: ["CONVEYOR_PREFIX": prefix])
        #expect(run.status == 0, "\(run.output)")
        #expect(try JSONValue(json: Array(run.output.utf8)).objectValue?["result"] == "revoked")
        let status = try await Self.conveyor("status", id, "--json", environment: ["CONVEYOR_PREFIX": prefix])
        #expect(try JSONValue(json: Array(status.output.utf8)).objectValue?["state"] == "REVOKED")
        let again = try await Self.conveyor("cancel", id, environment: ["CONVEYOR_PREFIX": prefix])
        #expect(again.output.contains("already REVOKED"), "\(again.output)")
        let client = try await Self.client()
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
        _ = try? await client.redis.del([RedisKeys.celeryResultKeyPrefix + id])
        await client.close()
    }

    @Test("submit with --kwargs that is not JSON fails before connecting, and says why")
    func submitRejectsBadJSON() async throws {
        let queue = TestServers.uniqueName("cli-bad-json")
        let run = try await Self.conveyor("submit", "examples.add", "--kwargs", "{bad", "--queue", queue)
        #expect(run.status != 0)
        #expect(run.output.contains("--kwargs is not valid JSON"), "\(run.output)")
        let client = try await Self.client()
        #expect(try await client.broker.queueInfo(queue) == nil, "nothing was submitted")
        await client.close()
    }

    @Test("result with an unreachable Redis exits 1 with one line naming the URL, password masked")
    func resultWithBadRedisURL() async throws {
        // Port 1 on localhost: nothing listens there, so the connection is refused at once.
        let run = try await Self.conveyor("result", "some-id", "--redis-url", "redis://:s3cret@127.0.0.1:1/0")
        #expect(run.status == 1)
        let lines = run.output.split(whereSeparator: \.isNewline)
        #expect(lines.count == 1, "\(run.output)")
        #expect(
            run.output.hasPrefix("conveyor: cannot connect to Redis at redis://:***@127.0.0.1:1/0"), "\(run.output)")
        #expect(!run.output.contains("s3cret"))
    }

    @Test("submit, then result --wait, against a worker: the sum; a failing task exits 1 with its error")
    func submitAndWaitForResult() async throws {
        let queue = TestServers.uniqueName("cli-result")
        // A key prefix of its own, Celery's result keys included, so that everything it wrote can be deleted.
        let prefix = TestServers.uniqueName("conveyor-cli") + ":"
        let environment = ["CONVEYOR_PREFIX": prefix, "CONVEYOR_RESULT_PREFIX": prefix]
        var conveyor = ConveyorConfiguration(
            brokerURLs: [TestServers.amqpURL], redisURL: TestServers.redisURL, keyPrefix: prefix)
        conveyor.resultKeyPrefix = prefix
        conveyor.logger.logLevel = .warning
        let worker = ConveyorWorker(
            configuration: WorkerConfiguration(conveyor: conveyor, queues: [queue], concurrency: 2),
            registry: Examples.registry)
        let running = Task { try await worker.run() }
        do {
            let add = try await Self.conveyor(
                "submit", "examples.add", "--args", "[2, 3]", "--queue", queue, environment: environment)
            #expect(add.status == 0, "\(add.output)")
            let id = add.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let result = try await Self.conveyor("result", id, "--wait", "--timeout", "30", environment: environment)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines) == "5")

            let fail = try await Self.conveyor(
                "submit", "examples.fail", "--args", #"["boom"]"#, "--queue", queue, environment: environment)
            let failID = fail.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let failed = try await Self.conveyor(
                "result", failID, "--wait", "--timeout", "30", environment: environment)
            #expect(failed.status == 1)
            #expect(failed.output.contains("FAILURE: ExampleError: boom"), "\(failed.output)")
        } catch {
            Issue.record(error)
        }
        worker.shutdown()
        _ = try? await running.value
        let client = try await Self.client()
        try? await RedisTestKeys.delete(prefix: prefix, on: client.redis)
        await Self.deleteQueues(queue, client: client)
        await client.close()
    }
}

/// Where the built `conveyor` is.
enum CLIBinary {
    /// The built `conveyor`: next to the test bundle, else in the repository's default build folder.
    static let path: String? = {
        var candidates: [URL] = []
        if let argument = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: argument).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            candidates.append(executable.deletingLastPathComponent())
        }
        candidates.append(TestServers.repositoryRoot.appendingPathComponent(".build/debug"))
        // On macOS the test binary sits in `<products>/X.xctest/Contents/MacOS`.
        candidates += candidates.filter { $0.path.hasSuffix(".xctest/Contents/MacOS") }.map {
            $0.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        }
        return candidates.map { $0.appendingPathComponent("conveyor").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()
}

extension JSONValue {
    fileprivate var objectValue: [String: JSONValue]? {
        if case .object(let fields) = self { return fields }
        return nil
    }
}
