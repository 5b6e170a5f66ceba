import ConveyorIO
import Testing

@Suite("GroupCommit: items in flight together share an operation")
struct GroupCommitTests {
    /// Holds operations until released, one at a time, and records what each one held.
    final class Operations: Sendable {
        let batches = LockedValue<[[Int]]>([])
        let held = LockedValue<[CheckedContinuation<Void, Never>]>([])

        func perform(_ items: [Int]) async -> Int {
            batches.withLock { $0.append(items) }
            await withCheckedContinuation { continuation in held.withLock { $0.append(continuation) } }
            // What every caller of the batch gets back: the batch's sum.
            return items.reduce(0, +)
        }

        func releaseAll() {
            let waiting = held.withLock { held in
                defer { held = [] }
                return held
            }
            for continuation in waiting { continuation.resume() }
        }

        var heldCount: Int { held.withLock { $0.count } }
    }

    static func until(_ condition: () -> Bool) async {
        while !condition() { await Task.yield() }
    }

    @Test(
        "a lone item goes at once; items queued behind a full window go out as one batch, each caller gets its output")
    func batches() async throws {
        let commit = GroupCommit<Int, Int>(maxBatch: 100, maxInFlight: 1)
        let operations = Operations()
        let results = LockedValue<[Int: Int]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let out = try await commit.submit(1) { await operations.perform($0) }
                results.withLock { $0[1] = out }
            }
            await Self.until { operations.heldCount == 1 }
            for n in 2...5 {
                group.addTask {
                    let out = try await commit.submit(n) { await operations.perform($0) }
                    results.withLock { $0[n] = out }
                }
            }
            await Self.until { commit.queuedCount == 4 }
            operations.releaseAll()
            await Self.until { operations.heldCount == 1 }
            operations.releaseAll()
            try await group.waitForAll()
        }
        let batches = operations.batches.withLock { $0 }
        #expect(batches.count == 2)
        #expect(batches.first == [1])
        #expect(batches.last.map { Set($0) } == [2, 3, 4, 5])
        #expect(results.withLock { $0 } == [1: 1, 2: 14, 3: 14, 4: 14, 5: 14])
        #expect(commit.queuedCount == 0)
    }

    @Test("maxBatch splits a long queue; an error reaches only the callers of its batch")
    func splitsAndFails() async throws {
        struct Refused: Error {}
        let commit = GroupCommit<Int, Int>(maxBatch: 2, maxInFlight: 1)
        let operations = Operations()
        let outcomes = LockedValue<[Int: Bool]>([:])
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                let ok = (try? await commit.submit(0) { await operations.perform($0) }) != nil
                outcomes.withLock { $0[0] = ok }
            }
            await Self.until { operations.heldCount == 1 }
            for n in 1...4 {
                group.addTask {
                    let ok =
                        (try? await commit.submit(n) { items in
                            let sum = await operations.perform(items)
                            // The second operation (the first batch of queued items) fails.
                            if operations.batches.withLock({ $0.firstIndex(of: items) }) == 1 { throw Refused() }
                            return sum
                        }) != nil
                    outcomes.withLock { $0[n] = ok }
                }
            }
            await Self.until { commit.queuedCount == 4 }
            while outcomes.withLock({ $0.count }) < 5 {
                operations.releaseAll()
                await Task.yield()
            }
        }
        let batches = operations.batches.withLock { $0 }
        #expect(batches.count == 3)
        #expect(batches.dropFirst().allSatisfy { $0.count == 2 })
        let failed = Set(outcomes.withLock { $0 }.filter { !$0.value }.keys)
        #expect(failed == Set(batches[1]), "exactly the callers of the failed batch see its error")
    }
}
