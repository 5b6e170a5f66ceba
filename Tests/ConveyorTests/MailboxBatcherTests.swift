import ConveyorIO
import Testing

@testable import Conveyor

@Suite("MailboxBatcher: calls in flight together share a message")
struct MailboxBatcherTests {
    /// Records each publish; each takes 50 ms, like a slow broker's confirm, so the calls started meanwhile queue.
    /// With `failBatches`, a publish of more than one call fails.
    final class Recorder: Sendable {
        let batches = LockedValue<[[String]]>([])
        let failBatches: Bool
        init(failBatches: Bool = false) { self.failBatches = failBatches }

        func publish(_ calls: [OutgoingCall]) async throws {
            batches.withLock { $0.append(calls.map(\.callID)) }
            try await Task.sleep(for: .milliseconds(50))
            if failBatches && calls.count > 1 { throw TestFailure("refused") }
        }
    }

    struct TestFailure: Error, Equatable {
        let text: String
        init(_ text: String) { self.text = text }
    }

    static func call(_ n: Int) -> OutgoingCall {
        OutgoingCall(callID: "c\(n)", method: "m", arguments: [.int(Int64(n))], generics: [])
    }

    @Test("a lone call is published at once, alone")
    func lone() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        try await batcher.send(Self.call(0)) { try await recorder.publish($0) }
        try await batcher.send(Self.call(1)) { try await recorder.publish($0) }
        #expect(recorder.batches.withLock { $0 } == [["c0"], ["c1"]])
    }

    @Test("100 concurrent calls go out in a few messages, each call exactly once, queued order kept")
    func concurrent() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        let first = Task { try await batcher.send(Self.call(0)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(5))  // the first publish is in flight
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 1..<100 {
                group.addTask { try await batcher.send(Self.call(n)) { try await recorder.publish($0) } }
            }
            try await group.waitForAll()
        }
        try await first.value
        let batches = recorder.batches.withLock { $0 }
        let all = batches.flatMap { $0 }
        #expect(all.count == 100)
        #expect(Set(all).count == 100)
        #expect(batches.count <= 4, "\(batches.count) messages for 100 calls")
        #expect(batches.first == ["c0"])
    }

    @Test("a failed publish fails every call of its message, and only those; later calls go out")
    func failure() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder(failBatches: true)
        let first = Task { try await batcher.send(Self.call(0)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(5))
        let results = await withTaskGroup(of: (String, Bool).self) { group in
            for n in 1..<10 {
                group.addTask {
                    do {
                        try await batcher.send(Self.call(n)) { try await recorder.publish($0) }
                        return ("c\(n)", true)
                    } catch {
                        return ("c\(n)", false)
                    }
                }
            }
            var results: [String: Bool] = [:]
            for await (id, ok) in group { results[id] = ok }
            return results
        }
        try await first.value
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.contains { $0.count > 1 }, "some calls shared a message: \(batches)")
        for batch in batches where batch != ["c0"] {
            for id in batch { #expect(results[id] == (batch.count == 1), "\(id) in \(batch)") }
        }
        try await batcher.send(Self.call(10)) { try await recorder.publish($0) }
        #expect(recorder.batches.withLock { $0.last } == ["c10"])
    }

    @Test("at most two publishes wait for their confirm at once; the third call queues")
    func twoInFlight() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        let a = Task { try await batcher.send(Self.call(0)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(5))
        let b = Task { try await batcher.send(Self.call(1)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(5))
        #expect(recorder.batches.withLock { $0 } == [["c0"], ["c1"]], "the second call did not wait for the first")
        let c = Task { try await batcher.send(Self.call(2)) { try await recorder.publish($0) } }
        let d = Task { try await batcher.send(Self.call(3)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(10))
        #expect(recorder.batches.withLock { $0.count } == 2, "the third and fourth calls queued")
        for task in [a, b, c, d] { try await task.value }
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.count == 3)
        #expect(Set(batches.last ?? []) == ["c2", "c3"])
    }
}
