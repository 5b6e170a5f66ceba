import ConveyorExamples
import ConveyorRedis
import ConveyorTestSupport
import Foundation
import Testing

@testable import Conveyor
@testable import ConveyorWorker

@Suite("Admission: keyed batches")
struct AdmissionBatchTests {
    /// Examples.Record inputs that push their task id to `list` when they run.
    static func inputs(_ list: String, _ tokens: [String]) -> [Examples.Record.Input] {
        tokens.map { .init(key: list, token: $0) }
    }

    /// The task ids that ran, once `expected` runs are recorded and a moment passed for a stray second run.
    static func runs(_ f: WorkerFixture, _ list: String, expected: Int) async throws -> [String] {
        try await eventually("\(expected) runs") {
            (try await f.redis.send(RedisCommand("LLEN", list)).int ?? 0) >= expected
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
        return try await f.redis.send(RedisCommand("LRANGE", list, 0, -1)).array?.compactMap(\.string) ?? []
    }

    @Test("a batch with keys: one id per key; the same batch again: the same ids, nothing runs twice")
    func resubmitSameBatch() async throws {
        try await WorkerFixture.with("batch-same") { f in
            let list = f.prefix + "runs"
            let keys = (0..<20).map { "order-\($0)" }
            let options = TaskOptions(queue: f.queue)
            try await f.withWorker { _ in
                let refs = try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, keys.map { "first-\($0)" }), idempotencyKeys: keys,
                    options: options)
                #expect(Set(refs.map(\.id)).count == keys.count, "one id per key")
                for (key, ref) in zip(keys, refs) {
                    #expect(try await f.store.idempotencyTaskID(key) == ref.id)
                    #expect(try await ref.get(timeout: .seconds(30)) == "first-\(key)", "inputs keep their order")
                }
                let again = try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, keys.map { "second-\($0)" }), idempotencyKeys: keys,
                    options: options)
                #expect(again.map(\.id) == refs.map(\.id))
                for ref in again { #expect(try await ref.get(timeout: .seconds(30)).hasPrefix("first-")) }
                let runs = try await Self.runs(f, list, expected: keys.count)
                #expect(runs.count == keys.count, "\(runs.count) runs for \(keys.count) keys")
                #expect(Set(runs) == Set(refs.map(\.id)))
            }
        }
    }

    @Test("a batch mixing new keys, keys already used, and one key twice")
    func mixedBatch() async throws {
        try await WorkerFixture.with("batch-mixed") { f in
            let list = f.prefix + "runs"
            var options = TaskOptions(queue: f.queue)
            try await f.withWorker { _ in
                options.idempotencyKey = "a"
                let a = try await f.client.submit(Examples.Record.self, .init(key: list, token: "a1"), options: options)
                options.idempotencyKey = nil
                let earlier = try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, ["b1"]), idempotencyKeys: ["b"], options: options)
                let refs = try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, ["a2", "x2", "b2", "y2", "x3"]),
                    idempotencyKeys: ["a", "x", "b", "y", "x"], options: options)
                #expect(refs[0].id == a.id)
                #expect(refs[2].id == earlier[0].id)
                #expect(refs[1].id == refs[4].id, "a key given twice names one task")
                #expect(Set(refs.map(\.id)).count == 4)
                #expect(!refs[0].submittedHere && refs[1].submittedHere)
                let results = try await withThrowingTaskGroup(of: String.self) { group in
                    for ref in refs { group.addTask { try await ref.get(timeout: .seconds(30)) } }
                    var results: [String] = []
                    for try await result in group { results.append(result) }
                    return results
                }
                #expect(results.sorted() == ["a1", "b1", "x2", "x2", "y2"], "existing keys keep their first input")
                let runs = try await Self.runs(f, list, expected: 4)
                #expect(runs.count == 4)
                #expect(Set(runs) == Set(refs.map(\.id)))
            }
        }
    }

    @Test("concurrent batches from 3 clients with overlapping keys: one task per key, each run once")
    func concurrentOverlappingBatches() async throws {
        try await WorkerFixture.with("batch-concurrent") { f in
            let list = f.prefix + "runs"
            var others: [ConveyorClient] = []
            let outcome: Result<Void, any Error>
            do {
                for _ in 0..<2 {
                    others.append(
                        try await ConveyorClient.connect(WorkerFixture.conveyorConfiguration(prefix: f.prefix)))
                }
                let producers = [f.client] + others
                try await f.withWorker(f.workerConfiguration(concurrency: 8)) { _ in
                    // Producer p submits keys 20p ..< 20p + 60 of 0 ..< 100, twice at once: every key but the first
                    // and last twenty is wanted by two producers, and each batch races its twin.
                    let submitted = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
                        for (index, producer) in producers.enumerated() {
                            let keys = (20 * index..<20 * index + 60).map { "k\($0)" }
                            let options = TaskOptions(queue: f.queue)
                            for _ in 0..<2 {
                                group.addTask {
                                    let refs = try await producer.submitMany(
                                        Examples.Record.self, Self.inputs(list, keys), idempotencyKeys: keys,
                                        options: options)
                                    return Array(zip(keys, refs.map(\.id)))
                                }
                            }
                        }
                        var all: [(String, String)] = []
                        for try await pairs in group { all += pairs }
                        return all
                    }
                    var idsByKey: [String: Set<String>] = [:]
                    for (key, id) in submitted { idsByKey[key, default: []].insert(id) }
                    #expect(idsByKey.count == 100)
                    #expect(idsByKey.values.allSatisfy { $0.count == 1 }, "a key named two tasks")
                    let ids = Set(idsByKey.values.flatMap { $0 })
                    #expect(ids.count == 100)
                    let runs = try await Self.runs(f, list, expected: 100)
                    #expect(runs.count == 100, "\(runs.count) runs for 100 keys")
                    #expect(Set(runs) == ids)
                }
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            for other in others { await other.close() }
            try outcome.get()
        }
    }

    @Test("a batch bigger than one script call's share of keys: every key reserved and confirmed, in order")
    func batchAcrossChunks() async throws {
        try await WorkerFixture.with("batch-chunks") { f in
            let count = TaskStore.idempotencyChunk * 2 + 100
            let keys = (0..<count).map { "big-\($0)" }
            let inputs = Array(repeating: Examples.Noop.Input(), count: count)
            let options = TaskOptions(queue: f.queue)
            let refs = try await f.client.submitMany(
                Examples.Noop.self, inputs, idempotencyKeys: keys, options: options)
            #expect(Set(refs.map(\.id)).count == count)
            for index in [0, TaskStore.idempotencyChunk, count - 1] {
                #expect(try await f.store.idempotencyTaskID(keys[index]) == refs[index].id)
            }
            let again = try await f.client.submitMany(
                Examples.Noop.self, inputs, idempotencyKeys: keys, options: options)
            #expect(again.map(\.id) == refs.map(\.id))
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == count, "published once each")
        }
    }

    @Test("a key another producer holds pending: the batch waits and takes it over with its id")
    func pendingKeyFallsBack() async throws {
        try await WorkerFixture.with("batch-pending") { f in
            let list = f.prefix + "runs"
            try await f.withWorker { _ in
                // A producer that died right after reserving: a pending reservation and no message.
                let reservation = try await f.store.reserveIdempotencyKey(
                    "job-2", candidate: "dead-producer-task", pending: .seconds(1), ttl: .seconds(60))
                #expect(reservation == .reserved(id: "dead-producer-task"))
                let started = ContinuousClock.now
                let refs = try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, ["one", "two"]), idempotencyKeys: ["job-1", "job-2"],
                    options: TaskOptions(queue: f.queue))
                #expect(refs[1].id == "dead-producer-task")
                #expect(ContinuousClock.now - started >= .milliseconds(500), "it waited for the reservation to lapse")
                #expect(try await refs[0].get(timeout: .seconds(20)) == "one")
                #expect(try await refs[1].get(timeout: .seconds(20)) == "two")
                #expect(try await Self.runs(f, list, expected: 2).count == 2)
            }
        }
    }

    @Test("keys that do not match the inputs one to one are refused, and nothing is reserved")
    func refusesBadKeys() async throws {
        try await WorkerFixture.with("batch-refuse") { (f: WorkerFixture) async throws in
            let list = f.prefix + "runs"
            let options = TaskOptions(queue: f.queue)
            await #expect(throws: ConveyorError.self) {
                try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, ["a", "b"]), idempotencyKeys: ["k1"], options: options)
            }
            await #expect(throws: ConveyorError.self) {
                try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, ["a", "b"]), idempotencyKeys: ["k1", ""],
                    options: options)
            }
            #expect(try await f.store.idempotencyTaskID("k1") == nil)
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
        }
    }

    @Test("a full queue refuses the whole batch and releases its keys")
    func boundReleasesKeys() async throws {
        try await WorkerFixture.with("batch-bound") { f in
            let list = f.prefix + "runs"
            var options = TaskOptions(queue: f.queue)
            options.maxQueued = 3
            let keys = ["q1", "q2", "q3", "q4"]
            await #expect(throws: ConveyorError.self) {
                try await f.client.submitMany(
                    Examples.Record.self, Self.inputs(list, keys), idempotencyKeys: keys, options: options)
            }
            for key in keys { #expect(try await f.store.idempotencyTaskID(key) == nil, "key \(key) left behind") }
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 0)
            let refs = try await f.client.submitMany(
                Examples.Record.self, Self.inputs(list, Array(keys.prefix(3))), idempotencyKeys: Array(keys.prefix(3)),
                options: options)
            #expect(refs.count == 3)
            #expect(try await f.admin.queueInfo(f.queue)?.messageCount == 3)
        }
    }
}
