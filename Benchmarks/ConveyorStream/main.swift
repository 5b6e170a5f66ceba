// Generators end to end: one generator yielding Ints as fast as it can, one consumer reading them with
// `for try await`, through RabbitMQ (the task message) and Redis (the items).
//
//   swift run -c release ConveyorStreamBenchmark [--items N] [--rounds R] [--first-item-rounds K]
//       [--bound B] [--amqp-url URL] [--redis-url URL]
//
// The worker runs in this process (a ConveyorWorker with the benchmark's generator), so the generator and the
// consumer read one clock:
// - items/s: N items divided by the time from the generator's first `yield` call to the consumer receiving item N-1;
// - time to first item: from the generator's first `yield` call (taken just before it) to the consumer's
//   `next()` returning item 0, with the consumer already waiting in its blocking XREAD (the generator sleeps
//   50 ms before its first yield, so it is); median and p90 over K generators;
// - submit to first item: from `client.stream(...)` being called to item 0 arriving, for a generator that yields at
//   once (the message through RabbitMQ, the claim, the first write); median and p90 over K more generators.
// The reference, in the same run with rounds alternating which goes first: the same items through Redis alone
// (pipelined XADD batches, one XREAD reader), so the figures read as a ratio on a shared machine.
// Prints one JSON line; progress goes to stderr. Keys and the queue are deleted at the end.
import BenchmarkSupport
import Conveyor
import ConveyorIO
import ConveyorRedis
import ConveyorWorker
import Foundation
import Logging

let program = "ConveyorStreamBenchmark"

struct Options {
    var items = 200_000
    var rounds = 3
    var firstItemRounds = 30
    /// A backpressure bound for the throughput rounds (0: none).
    var bound = 0
    var amqpURL = ProcessInfo.processInfo.environment["CONVEYOR_BROKER_URL"] ?? ConveyorConfiguration.defaultBrokerURL
    var redisURL = ProcessInfo.processInfo.environment["CONVEYOR_REDIS_URL"] ?? ConveyorConfiguration.defaultRedisURL

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        try parseFlags(arguments) { flag, value in
            switch flag {
            case "--items": options.items = try positiveInt(value, flag)
            case "--rounds": options.rounds = try positiveInt(value, flag)
            case "--first-item-rounds": options.firstItemRounds = try positiveInt(value, flag)
            case "--bound":
                guard let bound = Int(value), bound >= 0 else { throw BenchError("--bound takes 0 or more") }
                options.bound = bound
            case "--amqp-url": options.amqpURL = value
            case "--redis-url": options.redisURL = value
            default: throw BenchError("unknown option \(flag)")
            }
        }
        return options
    }
}

/// `bench.stream(n, pause_ms)`: sleeps `pause_ms`, then yields `0..<n` as fast as it can.
enum BenchStream: StreamDefinition {
    static let name = "bench.stream"
    struct Input: Codable, Sendable {
        var n: Int
        var pauseMs: Int
    }
    typealias Output = Int
    typealias Element = Int
}

/// When each generator made its first `yield` call, by task id.
let firstYields = LockedValue<[String: ContinuousClock.Instant]>([:])

func registry() -> TaskRegistry {
    var registry = TaskRegistry()
    registry.registerStream(BenchStream.self) { input, stream in
        if input.pauseMs > 0 { try await Task.sleep(for: .milliseconds(input.pauseMs)) }
        let id = stream.task.id
        firstYields.withLock { $0[id] = .now }
        for value in 0..<input.n { try await stream.yield(value) }
    }
    return registry
}

struct Round {
    var itemsPerSecond: Double
    /// Seconds from the first yield call to item 0 arriving.
    var firstItem: Double
    var submitToFirstItem: Double
    var id: String
}

func round(_ client: ConveyorClient, queue: String, items: Int, pauseMs: Int, bound: Int) async throws -> Round {
    let submitted = ContinuousClock.now
    let stream = try await client.stream(
        BenchStream.self, .init(n: items, pauseMs: pauseMs), options: .init(queue: queue),
        backpressure: bound > 0 ? bound : nil)
    var firstArrival: ContinuousClock.Instant?
    var expected = 0
    for try await value in stream {
        if firstArrival == nil { firstArrival = .now }
        guard value == expected else { throw BenchError("item \(expected) arrived as \(value)") }
        expected += 1
    }
    let last = ContinuousClock.now
    guard expected == items, let firstArrival else { throw BenchError("got \(expected) of \(items) items") }
    guard let firstYield = firstYields.withLock({ $0.removeValue(forKey: stream.id) }) else {
        throw BenchError("the generator did not record its first yield")
    }
    return Round(
        itemsPerSecond: Double(items) / (last - firstYield).secondsDouble,
        firstItem: (firstArrival - firstYield).secondsDouble,
        submitToFirstItem: (firstArrival - submitted).secondsDouble, id: stream.id)
}

/// The reference, Redis alone: the same items written as pipelined `XADD`s in batches of 1,000 (one `send(batch:)`
/// awaited per batch) and read with `XREAD COUNT 1000 BLOCK` on a dedicated connection, each item parsed as JSON.
/// Returns items/s from the first write to the last item read.
func rawRound(_ redis: RedisClient, key: String, items: Int) async throws -> Double {
    let started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
            var index = 0
            while index < items {
                let end = min(index + 1_000, items)
                let commands = (index..<end).map { RedisCommand("XADD", key, "0-\($0 + 1)", "item", "\($0)") }
                for result in try await redis.send(batch: commands) { _ = try result.get() }
                index = end
            }
        }
        group.addTask {
            var after = "0-0"
            var seen = 0
            while seen < items {
                let read = try await redis.withDedicatedConnection { connection in
                    try await connection.xread(
                        [(key: key, after: after)], count: 1_000, block: .seconds(1), timeout: .seconds(10))
                }
                for entry in read[key] ?? [] {
                    guard case .int(let value) = try JSONValue(json: entry["item"] ?? []), value == seen else {
                        throw BenchError("raw item \(seen) is wrong")
                    }
                    seen += 1
                    after = entry.id
                }
            }
        }
        try await group.waitForAll()
    }
    let rate = Double(items) / (ContinuousClock.now - started).secondsDouble
    _ = try await redis.del(key)
    return rate
}

extension Duration {
    var secondsDouble: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Deletes every key under `prefix` and the result keys of `ids`.
func deleteKeys(prefix: String, ids: [String], client: ConveyorClient) async throws {
    if !ids.isEmpty { _ = try await client.redis.del(ids.map { client.store.keys.result($0) }) }
    try await BenchmarkSupport.deleteKeys(under: prefix, on: client.redis)
}

let options = parsedOptions(program, Options.parse)

let queue = uniqueQueue("stream")
let prefix = "bench-stream-\(UUID().uuidString.prefix(8).lowercased()):"
var logger = Logger(label: "bench")
logger.logLevel = .error
var conveyor = ConveyorConfiguration(
    brokerURLs: [options.amqpURL], redisURL: options.redisURL, keyPrefix: prefix, defaultQueue: queue)
conveyor.logger = logger
let worker = ConveyorWorker(
    configuration: WorkerConfiguration(conveyor: conveyor, queues: [queue], concurrency: 4), registry: registry())

var figures: [String: Any] = [:]
var failure: (any Error)?
var ids: [String] = []
let client: ConveyorClient
do {
    client = try await ConveyorClient.connect(conveyor)
} catch {
    diagnose("\(program): \(error)")
    exit(1)
}
await withTaskGroup(of: Void.self) { group in
    group.addTask {
        do { try await worker.run() } catch { diagnose("\(program): worker: \(error)") }
    }
    do {
        // Submit only once the worker consumes: it declares the queue first.
        let deadline = ContinuousClock.now + .seconds(60)
        while (try await client.broker.queueInfo(queue))?.consumerCount ?? 0 < 1 {
            guard ContinuousClock.now < deadline else { throw BenchError("the worker did not start consuming") }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Warm-up: the scripts, the dedicated connections, the worker's first run.
        ids.append(try await round(client, queue: queue, items: 1_000, pauseMs: 0, bound: 0).id)
        var throughput: [Round] = []
        var raw: [Double] = []
        for index in 0..<options.rounds {
            // Alternate which goes first, so neither always meets a warmer (or more tired) Redis.
            if index % 2 == 0 {
                raw.append(try await rawRound(client.redis, key: prefix + "raw", items: options.items))
            }
            let result = try await round(client, queue: queue, items: options.items, pauseMs: 0, bound: options.bound)
            throughput.append(result)
            ids.append(result.id)
            if index % 2 == 1 {
                raw.append(try await rawRound(client.redis, key: prefix + "raw", items: options.items))
            }
            diagnose(
                "\(program): round \(index + 1): \(Int(result.itemsPerSecond)) items/s, Redis alone \(Int(raw[index]))")
        }
        var first: [Round] = []
        for _ in 0..<options.firstItemRounds {
            let result = try await round(client, queue: queue, items: 1, pauseMs: 50, bound: 0)
            first.append(result)
            ids.append(result.id)
        }
        var submitted: [Round] = []
        for _ in 0..<options.firstItemRounds {
            let result = try await round(client, queue: queue, items: 1, pauseMs: 0, bound: 0)
            submitted.append(result)
            ids.append(result.id)
        }
        let firstItem = first.map(\.firstItem).sorted()
        let submitToFirst = submitted.map(\.submitToFirstItem).sorted()
        figures = [
            "benchmark": "stream",
            "items": options.items,
            "rounds": options.rounds,
            "bound": options.bound,
            "items_per_s": rounded(median(throughput.map(\.itemsPerSecond))),
            "items_per_s_rounds": throughput.map { rounded($0.itemsPerSecond) },
            "raw_redis_items_per_s": rounded(median(raw)),
            "raw_redis_items_per_s_rounds": raw.map { rounded($0) },
            "ratio_to_raw": rounded(median(throughput.map(\.itemsPerSecond)) / max(1, median(raw)), 3),
            "ratio_to_raw_rounds": zip(throughput, raw).map { rounded($0.0.itemsPerSecond / max(1, $0.1), 3) },
            "first_item_rounds": options.firstItemRounds,
            "first_item_p50_ms": rounded(quantile(sorted: firstItem, 0.5) * 1000, 3),
            "first_item_p90_ms": rounded(quantile(sorted: firstItem, 0.9) * 1000, 3),
            "submit_to_first_item_p50_ms": rounded(quantile(sorted: submitToFirst, 0.5) * 1000, 3),
            "submit_to_first_item_p90_ms": rounded(quantile(sorted: submitToFirst, 0.9) * 1000, 3),
        ]
    } catch {
        failure = error
    }
    worker.shutdown()
    await group.waitForAll()
}
do {
    try await deleteKeys(prefix: prefix, ids: ids, client: client)
    _ = try await client.broker.deleteQueue(queue)
    _ = try await client.broker.deleteQueue(queue + ".dlq")
} catch {
    diagnose("\(program): cleanup: \(error)")
}
await client.close()
if let failure {
    diagnose("\(program): \(failure)")
    exit(1)
}
printFigures(figures, program: program)
