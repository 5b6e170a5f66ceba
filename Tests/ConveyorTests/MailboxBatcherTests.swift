import ConveyorIO
import Testing

@testable import Conveyor

@Suite("MailboxBatcher: calls in flight together share a message")
struct MailboxBatcherTests {
    /// Records each publish; each takes 50 ms, like a slow broker's confirm, so the calls started meanwhile queue.
    final class Recorder: Sendable {
        let batches = LockedValue<[[String]]>([])
        let failFirstBatchOf: Int?
        init(failFirstBatchOf: Int? = nil) { self.failFirstBatchOf = failFirstBatchOf }

        func publish(_ calls: [OutgoingCall]) async throws {
            let index = batches.withLock { batches in
                batches.append(calls.map(\.callID))
                return batches.count
            }
            try await Task.sleep(for: .milliseconds(50))
            if let size = failFirstBatchOf, calls.count == size, index == 2 { throw TestFailure("refused") }
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
        let recorder = Recorder(failFirstBatchOf: 9)
        let first = Task { try await batcher.send(Self.call(0)) { try await recorder.publish($0) } }
        try await Task.sleep(for: .milliseconds(5))
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 1..<10 {
                group.addTask {
                    do {
                        try await batcher.send(Self.call(n)) { try await recorder.publish($0) }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            var results: [Int: Bool] = [:]
            for await (n, ok) in group { results[n] = ok }
            return results
        }
        try await first.value
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.count == 2)
        #expect(batches.last?.count == 9)
        #expect(results.values.allSatisfy { !$0 }, "the nine calls of the refused message all failed")
        try await batcher.send(Self.call(10)) { try await recorder.publish($0) }
        #expect(recorder.batches.withLock { $0.last } == ["c10"])
    }
}
