import ConveyorAMQP
import ConveyorExamples
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Worker: bad input goes to the dead-letter queue with its reason; the worker keeps serving")
struct WorkerBadInputTests {
    static func headers(id: String, task: String) -> AMQPTable {
        AMQPTable(json: TaskEnvelope(id: id, task: task).celeryHeaders)
    }

    static func body(_ kwargs: [String: JSONValue]) throws -> [UInt8] {
        Array(try JSONValue.array([.array([]), .object(kwargs), .object([:])]).jsonData())
    }

    @Test("unknown task, undecodable body, wrong input types, oversized payload, missing headers, poison")
    func everyKindIsDeadLettered() async throws {
        try await WorkerFixture.with("bad") { f in
            var configuration = f.workerConfiguration(concurrency: 2)
            configuration.maxPayloadBytes = 4096
            configuration.maxDeliveries = 3
            let unknown = UUID().uuidString.lowercased()
            let garbled = UUID().uuidString.lowercased()
            let wrongTypes = UUID().uuidString.lowercased()
            let oversized = UUID().uuidString.lowercased()
            let pickled = UUID().uuidString.lowercased()
            let poison = UUID().uuidString.lowercased()

            // Poison: three earlier claims whose workers died (their leases lapsed at once).
            for _ in 0..<3 {
                _ = try await f.store.claim(
                    poison, worker: "crashed", name: Examples.Add.name, queue: f.queue, lease: .milliseconds(1))
                try await Task.sleep(for: .milliseconds(5))
            }

            try await f.withWorker(configuration) { _ in
                try await f.publishRaw(
                    body: try Self.body([:]), headers: Self.headers(id: unknown, task: "examples.nope"),
                    correlationID: unknown)
                try await f.publishRaw(
                    body: Array("[[], {\"a\": 1".utf8), headers: Self.headers(id: garbled, task: Examples.Add.name),
                    correlationID: garbled)
                try await f.publishRaw(
                    body: try Self.body(["a": "two", "b": 3]),
                    headers: Self.headers(id: wrongTypes, task: Examples.Add.name),
                    correlationID: wrongTypes)
                try await f.publishRaw(
                    body: try Self.body(["a": .string(String(repeating: "x", count: 5000)), "b": 1]),
                    headers: Self.headers(id: oversized, task: Examples.Add.name), correlationID: oversized)
                try await f.publishRaw(
                    body: [0x80, 0x04, 0x95], headers: Self.headers(id: pickled, task: Examples.Add.name),
                    contentType: "application/x-python-serialize", correlationID: pickled)
                try await f.publishRaw(body: Array("hello".utf8), headers: [:], contentType: "text/plain")
                try await f.publishRaw(
                    body: try Self.body(["a": 1, "b": 2]), headers: Self.headers(id: poison, task: Examples.Add.name),
                    correlationID: poison)

                let letters = try await f.deadLetters(count: 7)
                var reasons: [String: String] = [:]
                var anonymous: [String] = []
                for letter in letters {
                    let headers = letter.properties.headers.jsonFields
                    let reason = headers["conveyor_dead_letter_reason"]?.stringValue ?? "none"
                    #expect(headers["conveyor_dead_letter_queue"]?.stringValue == f.queue)
                    #expect(headers["conveyor_dead_letter_detail"]?.stringValue?.isEmpty == false)
                    if let id = letter.properties.correlationId {
                        reasons[id] = reason
                    } else {
                        anonymous.append(reason)
                    }
                }
                #expect(reasons[unknown] == "unknown-task")
                #expect(reasons[garbled] == "malformed")
                #expect(reasons[wrongTypes] == "invalid-input")
                #expect(reasons[oversized] == "payload-too-large")
                #expect(reasons[pickled] == "malformed")
                #expect(reasons[poison] == "delivery-limit")
                #expect(anonymous == ["malformed"])

                // Each task with an id is FAILURE with a message saying why.
                let expected: [(String, String, String)] = [
                    (unknown, "NotRegistered", "examples.nope"), (garbled, "MalformedMessage", "malformed body"),
                    (wrongTypes, "TaskInputError", "field 'a'"), (oversized, "PayloadTooLarge", "exceeds the limit"),
                    (pickled, "MalformedMessage", "application/x-python-serialize"),
                    (poison, "PoisonMessage", "claimed 4 times"),
                ]
                for (id, type, text) in expected {
                    let status = try await f.store.status(id)
                    #expect(status.state == .failure, "\(type)")
                    #expect(status.error?.type == type)
                    #expect(status.error?.message.contains(text) == true, "\(String(describing: status.error))")
                    let meta = try await f.client.result(id)
                    #expect(meta?.failure?.type == type)
                }
                #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)

                // And the worker still serves.
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 4, b: 5), options: .init(queue: f.queue))
                #expect(try await ref.get(timeout: .seconds(10)) == 9)
            }
        }
    }

    @Test("on classic queues (CONVEYOR_QUEUE_TYPE=classic) tasks run and bad messages still reach the dead letters")
    func classicQueues() async throws {
        try await WorkerFixture.with("classic") { f in
            // The fixture made quorum queues: start again with classic ones, as a classic-configured fleet would.
            _ = try await f.admin.deleteQueue(f.queue)
            _ = try await f.admin.deleteQueue(f.deadLetterQueue)
            // The worker declares both (classic) as it starts; the client then finds them and uses them.
            var configuration = f.workerConfiguration(concurrency: 2)
            configuration.conveyor.topology.queueType = .classic
            try await f.withWorker(configuration) { _ in
                let ref = try await f.client.submit(
                    Examples.Add.self, .init(a: 20, b: 22), options: .init(queue: f.queue))
                #expect(try await ref.get(timeout: .seconds(30)) == 42)
                let unknown = UUID().uuidString.lowercased()
                try await f.publishRaw(
                    body: try Self.body([:]), headers: Self.headers(id: unknown, task: "examples.nope"),
                    correlationID: unknown)
                let letters = try await f.deadLetters(count: 1)
                #expect(letters.count == 1)
                #expect(
                    letters.first?.properties.headers.jsonFields["conveyor_dead_letter_reason"]?.stringValue
                        == "unknown-task")
                #expect(try await f.store.status(unknown).state == .failure)
            }
            // Still classic after the worker declared what it needed: a quorum declaration is refused.
            await #expect(throws: ConveyorError.self) { try await TaskQueueTopology().declare(f.queue, on: f.admin) }
        }
    }

    @Test("absurd numbers from a message (time limits of 1e300 s, an expiry in the year 9892) do not crash it")
    func absurdNumbers() async throws {
        try await WorkerFixture.with("absurd") { f in
            try await f.withWorker { _ in
                let id = UUID().uuidString.lowercased()
                var envelope = TaskEnvelope(id: id, task: Examples.Add.name)
                envelope.timeLimit = .init(hard: 1e300, soft: 1e299)
                envelope.expires = Date(timeIntervalSince1970: 2.5e11)
                try await f.publishRaw(
                    body: try Self.body(["a": 1, "b": 2]), headers: AMQPTable(json: envelope.celeryHeaders),
                    correlationID: id)
                #expect(try await f.client.ref(id: id, as: Int.self).get(timeout: .seconds(30)) == 3)
                // Still serving.
                let next = try await f.client.submit(
                    Examples.Add.self, .init(a: 2, b: 2), options: .init(queue: f.queue))
                #expect(try await next.get(timeout: .seconds(30)) == 4)
            }
        }
    }

    @Test("a waiting client is told at once when its task is dead-lettered")
    func clientSeesDeadLetter() async throws {
        try await WorkerFixture.with("bad-wait") { f in
            try await f.withWorker { _ in
                let ref = try await f.client.submit(name: "examples.missing", options: .init(queue: f.queue))
                let error = await #expect(throws: TaskError.self) { try await ref.get(timeout: .seconds(10)) }
                #expect(error?.type == "NotRegistered")
                _ = try await f.deadLetters(count: 1)
            }
        }
    }
}
