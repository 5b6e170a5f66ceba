import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

#if canImport(Glibc)
import Glibc
#endif

/// Generators against the real servers: items reach every reader in order, errors and cancellation arrive in order,
/// a crash adds no item twice, and the backpressure bound holds.
// A lost wakeup or a reader that never sees the end would hang a test: the limit fails it instead.
@Suite("Worker: generators (streams)", .timeLimit(.minutes(2)))
struct WorkerStreamTests {
    /// Reads a generator's stream with redis-py's XREAD, as docs/PROTOCOL.md shows, and prints one JSON line.
    static let pythonReader = #"""
        import json, sys, redis
        url, key = sys.argv[1:3]
        r = redis.Redis.from_url(url)
        last, items = "0-0", []
        while True:
            for _, entries in r.xread({key: last}, count=1000, block=1000) or []:
                for entry_id, fields in entries:
                    last = entry_id
                    if b"item" in fields:
                        items.append(json.loads(fields[b"item"]))
                    elif b"end" in fields:
                        print(json.dumps({"end": fields[b"end"].decode(), "count": int(fields[b"count"]),
                                          "items": items}))
                        sys.exit(0)
        """#

    /// The last entry's sequence number and whether it is the end marker.
    static func streamTop(_ f: WorkerFixture, _ id: String) async throws -> (sequence: Int, ended: Bool) {
        let top = try await f.redis.send(RedisCommand("XREVRANGE", f.store.keys.stream(id), "+", "-", "COUNT", 1))
        guard let entry = top.array?.first?.array, entry.count == 2, let entryID = entry[0].string,
            let fields = entry[1].array
        else { return (0, false) }
        let names = stride(from: 0, to: fields.count, by: 2).compactMap { fields[$0].string }
        return (StreamReader<Int>.sequence(of: entryID) ?? 0, names.contains("end"))
    }

    /// The stored items (the marker left out).
    static func storedItems(_ f: WorkerFixture, _ id: String) async throws -> Int {
        let (sequence, ended) = try await streamTop(f, id)
        return ended ? sequence - 1 : sequence
    }

    /// `conveyor stream --follow ID`'s output, or `nil` when the binary is not built.
    static func followWithCLI(_ id: String, environment: [String: String]) async throws -> String? {
        guard let binary = CLIBinary.path else { return nil }
        return try await ProcessRunner.run(
            executable: "/usr/bin/timeout", arguments: ["60", binary, "stream", "--follow", id],
            environment: environment, displayName: "conveyor stream --follow")
    }

    /// ``pythonReader``'s output, or `nil` when the interop tests are skipped.
    static func readWithPython(_ key: String) async throws -> String? {
        guard CeleryPython.isAvailable else { return nil }
        return try await ProcessRunner.run(
            executable: "/usr/bin/timeout",
            arguments: ["60", CeleryPython.path, "-c", pythonReader, TestServers.redisURL, key],
            displayName: "redis-py reader")
    }

    @Test(
        "10,000 items arrive complete and in order in Swift, in a second process (conveyor stream --follow) and in redis-py"
    )
    func tenThousandEverywhere() async throws {
        try await WorkerFixture.with("stream-10k") { f in
            try await f.withWorker { _ in
                let total = 10_000
                let stream = try await f.client.stream(
                    Examples.Count.self, .init(n: total), options: .init(queue: f.queue))
                let environment = [
                    "CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL,
                    "CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix,
                ]
                // The other readers start while the generator runs.
                async let cli = Self.followWithCLI(stream.id, environment: environment)
                async let python = Self.readWithPython(f.store.keys.stream(stream.id))
                var received: [Int] = []
                received.reserveCapacity(total)
                for try await value in stream { received.append(value) }
                #expect(received == Array(0..<total))
                #expect(try await stream.ref.get(timeout: .seconds(10)) == total)

                let cliOutput = try #require(try await cli, "the conveyor binary is not built next to the tests")
                let lines = cliOutput.split(separator: "\n").map { Int($0) }
                #expect(lines == (0..<total).map { Optional($0) })

                if let pythonOutput = try await python {
                    let line = try #require(pythonOutput.split(separator: "\n").last)
                    let printed = try JSONValue(json: Array(line.utf8))
                    guard case .object(let fields) = printed, case .array(let items)? = fields["items"] else {
                        throw TestSupportError("unexpected output: \(line.prefix(200))")
                    }
                    #expect(fields["end"] == "SUCCESS")
                    #expect(fields["count"] == .int(Int64(total)))
                    #expect(items == (0..<total).map { JSONValue.int(Int64($0)) })
                } else {
                    print("redis-py reader skipped: \(CeleryPython.skipMessage)")
                }

                // Items by index, with their indices.
                #expect(
                    try await f.client.streamItem(stream.id, index: 9_999, as: Int.self, timeout: .seconds(10)) == 9_999
                )
                var indices = 0
                for try await item in f.client.follow(stream.id, as: Int.self).items {
                    #expect(item.index == item.value)
                    indices += 1
                }
                #expect(indices == total)

                // Celery clients see the final state and the count.
                let meta = try #require(try await f.client.result(stream.id))
                #expect(meta.state == .success)
                #expect(meta.result == .int(Int64(total)))
            }
        }
    }

    @Test("an error thrown after item 5 reaches the consumer after items 0-4, and not before")
    func errorAfterFive() async throws {
        var registry = Examples.registry
        registry.registerStream(name: "test.fail-after-five") { _, _, stream in
            for value in 0..<5 {
                try await stream.yield(.int(Int64(value)))
                try await Task.sleep(for: .milliseconds(20))
            }
            throw Examples.ExampleError(message: "broken after five")
        }
        try await WorkerFixture.with("stream-error") { f in
            try await f.withWorker(registry: registry) { _ in
                let stream = try await f.client.stream(
                    name: "test.fail-after-five", options: .init(queue: f.queue))
                var received: [JSONValue] = []
                var caught: TaskError?
                do {
                    for try await value in stream { received.append(value) }
                } catch let error as TaskError {
                    caught = error
                }
                #expect(received == [0, 1, 2, 3, 4])
                #expect(caught?.type == "ExampleError")
                #expect(caught?.message == "broken after five")

                // A late reader sees the same order; the marker is the sixth entry.
                var late: [JSONValue] = []
                await #expect(throws: TaskError.self) {
                    for try await value in f.client.follow(stream.id) { late.append(value) }
                }
                #expect(late == [0, 1, 2, 3, 4])
                #expect(try await Self.streamTop(f, stream.id) == (6, true))

                // An item the generator never produced is an error, not a wait.
                await #expect(throws: TaskError.self) {
                    _ = try await f.client.streamItem(stream.id, index: 7, timeout: .seconds(10))
                }

                let status = try await f.client.status(stream.id)
                #expect(status.state == .failure)
                let meta = try #require(try await f.client.result(stream.id))
                #expect(meta.state == .failure)
                guard case .object(let result) = meta.result else {
                    throw TestSupportError("the FAILURE meta's result is not an object: \(meta.result)")
                }
                #expect(result["items"] == 5)
                #expect(result["exc_type"] == "ExampleError")
            }
        }
    }

    @Test("a retried generator runs again from its start and continues where it stopped: no item twice")
    func retryContinues() async throws {
        var registry = Examples.registry
        registry.registerStream(name: "test.retry-once") { _, _, stream in
            let first = stream.task.retries == 0
            for value in 0..<10 {
                try await stream.yield(.int(Int64(value)))
                if first && value == 4 { throw stream.task.retry(after: .milliseconds(50), reason: "once") }
            }
        }
        try await WorkerFixture.with("stream-retry") { f in
            try await f.withWorker(registry: registry) { _ in
                let stream = try await f.client.stream(name: "test.retry-once", options: .init(queue: f.queue))
                var received: [JSONValue] = []
                for try await value in stream { received.append(value) }
                #expect(received == (0..<10).map { JSONValue.int(Int64($0)) })
                #expect(try await Self.streamTop(f, stream.id) == (11, true))
                let status = try await f.client.status(stream.id)
                #expect(status.state == .success)
                #expect(status.retries == 1)
            }
        }
    }

    @Test("kill -9 of the worker after item 50 of 100: after redelivery the consumer has items 0-99 exactly once")
    func killNineMidStream() async throws {
        try await WorkerFixture.with("stream-kill9") { f in
            let first = try ExamplesWorkerProcess.start(f, concurrency: 2, lease: 2)
            defer { first.removeOutput() }
            var second: ProcessRunner.ChildProcess?
            defer { second?.removeOutput() }
            do {
                let stream = try await f.client.stream(
                    Examples.Count.self, .init(n: 100, delayMs: 30), options: .init(queue: f.queue))
                var received: [Int] = []
                for try await value in stream {
                    received.append(value)
                    if value == 50 {
                        first.signal(SIGKILL)
                        #expect(await first.exitStatus() == 128 + SIGKILL)
                        #expect(try await Self.storedItems(f, stream.id) < 100, "the kill came too late")
                        second = try ExamplesWorkerProcess.start(f, concurrency: 2, lease: 2)
                    }
                }
                #expect(received == Array(0..<100))
                #expect(try await Self.streamTop(f, stream.id) == (101, true))
                let status = try await f.client.status(stream.id)
                #expect(status.state == .success)
                #expect(status.attempts >= 2)
            } catch {
                first.signal(SIGKILL)
                _ = await first.exitStatus()
                second?.signal(SIGKILL)
                throw error
            }
            if let second {
                second.signal(SIGTERM)
                #expect(await second.exitStatus() == 0, "\(second.output)")
            }
        }
    }

    @Test("breaking out of the loop after 3 items cancels the generator within 1 s; its state is REVOKED")
    func breakCancels() async throws {
        try await WorkerFixture.with("stream-break") { f in
            try await f.withWorker { _ in
                let delayMs = 10
                let stream = try await f.client.stream(
                    Examples.Count.self, .init(n: 100_000, delayMs: delayMs), options: .init(queue: f.queue))
                var received: [Int] = []
                for try await value in stream {
                    received.append(value)
                    if received.count == 3 { break }
                }
                let broke = ContinuousClock.now
                #expect(received == [0, 1, 2])
                try await f.awaitState(stream.id, .revoked, timeout: .seconds(5))
                let revokedAfter = ContinuousClock.now - broke
                // The generator stopped yielding: the marker is in and nothing follows it.
                let produced = try await Self.storedItems(f, stream.id)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await Self.streamTop(f, stream.id) == (produced + 1, true))
                // Items produced after the break, at one per `delayMs`, bound how long it kept going.
                let keptGoing = Duration.milliseconds((produced - received.count) * delayMs)
                #expect(keptGoing < .seconds(1), "kept yielding for about \(keptGoing) after the break")
                #expect(revokedAfter < .seconds(3), "REVOKED \(revokedAfter) after the break")
                print("break → REVOKED in \(revokedAfter); \(produced - received.count) items produced after the break")

                // Any later reader sees the items, then the revocation.
                var late = 0
                await #expect(throws: ConveyorError.self) {
                    for try await _ in f.client.follow(stream.id, as: Int.self) { late += 1 }
                }
                #expect(late == produced)
            }
        }
    }

    @Test("client.cancel(id) while a consumer reads: the consumer gets the items, then a revocation error")
    func cancelWhileReading() async throws {
        try await WorkerFixture.with("stream-cancel") { f in
            try await f.withWorker { _ in
                let stream = try await f.client.stream(
                    Examples.Tokens.self, .init(text: String(repeating: "word ", count: 1_000), delayMs: 10),
                    options: .init(queue: f.queue))
                var received = 0
                var revoked = false
                do {
                    for try await word in stream {
                        #expect(word == "word")
                        received += 1
                        if received == 5 { try await f.client.cancel(stream.id, reason: "enough words") }
                    }
                } catch ConveyorError.revoked(_, let reason) {
                    revoked = true
                    #expect(reason == "enough words")
                }
                #expect(revoked)
                #expect(received >= 5)
                #expect(received < 1_000)
                #expect(try await f.client.status(stream.id).state == .revoked)
            }
        }
    }

    @Test("backpressure bound 10 with a slow consumer: never more than 10 items unconsumed")
    func backpressureBound() async throws {
        try await WorkerFixture.with("stream-bound") { f in
            try await f.withWorker { _ in
                let total = 60
                let bound = 10
                let stream = try await f.client.stream(
                    Examples.Count.self, .init(n: total), options: .init(queue: f.queue), backpressure: bound)
                var received: [Int] = []
                var mostAhead = 0
                for try await value in stream {
                    received.append(value)
                    try await Task.sleep(for: .milliseconds(30))
                    let ahead = try await Self.storedItems(f, stream.id) - received.count
                    mostAhead = max(mostAhead, ahead)
                    #expect(ahead <= bound, "\(ahead) items unconsumed after \(received.count) read")
                }
                #expect(received == Array(0..<total))
                // The producer did run ahead up to (about) the bound: the bound, not a stall, kept it there.
                #expect(mostAhead >= bound - 2, "the producer was at most \(mostAhead) ahead")
            }
        }
    }

    @Test("conveyor stream NAME prints the items of a new generator, one JSON value per line")
    func cliStreamByName() async throws {
        try await WorkerFixture.with("stream-cli") { f in
            try await f.withWorker { _ in
                let binary = try #require(CLIBinary.path, "the conveyor binary is not built next to the tests")
                let output = try await ProcessRunner.run(
                    executable: "/usr/bin/timeout",
                    arguments: [
                        "60", binary, "stream", "examples.tokens", "--kwargs",
                        #"{"text": "to be or not", "delay_ms": 1}"#,
                        "--queue", f.queue,
                    ],
                    environment: [
                        "CONVEYOR_BROKER_URL": TestServers.amqpURL, "CONVEYOR_REDIS_URL": TestServers.redisURL,
                        "CONVEYOR_PREFIX": f.prefix, "CONVEYOR_RESULT_PREFIX": f.prefix,
                    ])
                #expect(output.split(separator: "\n") == [#""to""#, #""be""#, #""or""#, #""not""#])
            }
        }
    }
}
