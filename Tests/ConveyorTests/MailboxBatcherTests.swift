import ConveyorIO
import Testing

@testable import Conveyor

@Suite("MailboxBatcher: calls in flight together share a message")
struct MailboxBatcherTests {
    /// Holds every publish until opened, like a broker whose confirms have not come yet.
    final class Gate: Sendable {
        private let state = LockedValue<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

        func wait() async {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }

        func open() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// Records each publish and holds it at `gate`; with `failBatches`, a publish of more than one call fails.
    final class Recorder: Sendable {
        let batches = LockedValue<[[String]]>([])
        let gate = Gate()
        let failBatches: Bool
        init(failBatches: Bool = false) { self.failBatches = failBatches }

        var count: Int { batches.withLock { $0.count } }

        func publish(_ calls: [OutgoingCall]) async throws {
            batches.withLock { $0.append(calls.map(\.callID)) }
            await gate.wait()
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

    /// Waits (without a deadline of its own: the test's time limit bounds it) until `condition` holds.
    static func until(_ condition: () -> Bool) async {
        while !condition() { await Task.yield() }
    }

    @Test("a lone call is published at once, alone", .timeLimit(.minutes(1)))
    func lone() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        recorder.gate.open()
        try await batcher.send(Self.call(0)) { try await recorder.publish($0) }
        try await batcher.send(Self.call(1)) { try await recorder.publish($0) }
        #expect(recorder.batches.withLock { $0 } == [["c0"], ["c1"]])
    }

    @Test(
        "two publishes await their confirm at once; the calls made meanwhile go out together, each once",
        .timeLimit(.minutes(1)))
    func concurrent() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0..<100 {
                group.addTask { try await batcher.send(Self.call(n)) { try await recorder.publish($0) } }
            }
            // Two calls are being published (held at the gate); the other 98 can only queue.
            await Self.until { recorder.count == 2 && batcher.queuedCount == 98 }
            recorder.gate.open()
            try await group.waitForAll()
        }
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.count == 3, "\(batches.map(\.count))")
        #expect(batches.prefix(2).allSatisfy { $0.count == 1 })
        #expect(batches.last?.count == 98)
        let all = batches.flatMap { $0 }
        #expect(all.count == 100)
        #expect(Set(all).count == 100)
    }

    @Test(
        "a failed publish fails every call of its message, and only those; later calls go out", .timeLimit(.minutes(1)))
    func failure() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder(failBatches: true)
        let results = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
            for n in 0..<10 {
                group.addTask {
                    do {
                        try await batcher.send(Self.call(n)) { try await recorder.publish($0) }
                        return ("c\(n)", true)
                    } catch {
                        return ("c\(n)", false)
                    }
                }
            }
            await Self.until { recorder.count == 2 && batcher.queuedCount == 8 }
            recorder.gate.open()
            var results: [String: Bool] = [:]
            for try await (id, ok) in group { results[id] = ok }
            return results
        }
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.map(\.count) == [1, 1, 8])
        for batch in batches {
            for id in batch { #expect(results[id] == (batch.count == 1), "\(id) in \(batch)") }
        }
        try await batcher.send(Self.call(10)) { try await recorder.publish($0) }
        #expect(recorder.batches.withLock { $0.last } == ["c10"])
    }

    @Test("the third call waits for a confirm, then goes out with the calls made meanwhile", .timeLimit(.minutes(1)))
    func thirdQueues() async throws {
        let batcher = MailboxBatcher()
        let recorder = Recorder()
        let a = Task { try await batcher.send(Self.call(0)) { try await recorder.publish($0) } }
        await Self.until { recorder.count == 1 }
        let b = Task { try await batcher.send(Self.call(1)) { try await recorder.publish($0) } }
        // The second call did not wait for the first one's confirm.
        await Self.until { recorder.count == 2 }
        let c = Task { try await batcher.send(Self.call(2)) { try await recorder.publish($0) } }
        let d = Task { try await batcher.send(Self.call(3)) { try await recorder.publish($0) } }
        await Self.until { batcher.queuedCount == 2 }
        #expect(recorder.count == 2, "nothing more is published while two publishes await their confirm")
        recorder.gate.open()
        for task in [a, b, c, d] { try await task.value }
        let batches = recorder.batches.withLock { $0 }
        #expect(batches.count == 3)
        #expect(Set(batches.last ?? []) == ["c2", "c3"])
    }
}
