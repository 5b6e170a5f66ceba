// Conveyor's foundation benchmark: the AMQP and Redis clients against the C reference and redis-benchmark, in one
// run, so every figure is read as a ratio measured on the same machine at the same time.
//
//   swift run -c release ConveyorBenchmarks [--messages N] [--rounds R] [--amqp-url URL] [--redis-url URL]
//
// Prints one JSON line. Each workload runs `rounds` times, ours and the reference taking turns, and the median of
// each is reported, which keeps a noisy neighbour from favouring one side.
import BenchmarkSupport
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation

struct Options {
    var messages = 50_000
    var rounds = 3
    var batch = 500
    var prefetch: UInt16 = 200
    var bodyBytes = 256
    var redisOps = 200_000
    var amqpURL = ProcessInfo.processInfo.environment["CONVEYOR_BROKER_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
    var redisURL = ProcessInfo.processInfo.environment["CONVEYOR_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        try parseFlags(arguments) { flag, value in
            switch flag {
            case "--messages": options.messages = try positiveInt(value, flag)
            case "--rounds": options.rounds = try positiveInt(value, flag)
            case "--batch": options.batch = try positiveInt(value, flag)
            case "--redis-ops": options.redisOps = try positiveInt(value, flag)
            case "--amqp-url": options.amqpURL = value
            case "--redis-url": options.redisURL = value
            default: throw BenchError("unknown option \(flag)")
            }
        }
        return options
    }
}

// MARK: - AMQP, ours

struct AMQPFigures {
    var publishBatched: Double
    var publishSingle64: Double
    var consumeAck: Double
    var publishConsume: Double
}

func amqpRound(_ options: Options) async throws -> AMQPFigures {
    let publisher = try await AMQPConnection.connect(url: options.amqpURL, connectionName: "bench-publisher")
    let consumerConnection = try await AMQPConnection.connect(url: options.amqpURL, connectionName: "bench-consumer")
    let message = AMQPMessage(
        body: [UInt8](repeating: UInt8(ascii: "x"), count: options.bodyBytes),
        properties: AMQPProperties(contentType: "application/json"))
    let queue = uniqueQueue("swift")
    _ = try await publisher.declare(AMQPQueue(queue))

    let count = options.messages
    // Confirmed publishing in batches, awaiting each batch's confirms.
    let publishTime = try await seconds {
        try await AMQPWorkloads.publishAll(message, count: count, batch: options.batch, to: queue, on: publisher)
    }

    // Consume and ack each one, as a worker does.
    let consumeTime = try await seconds {
        try await AMQPWorkloads.consumeAndAck(
            count: count, from: queue, prefetch: options.prefetch, on: consumerConnection)
    }

    // One publish at a time, each awaiting its own confirm, from 64 concurrent tasks.
    let singleCount = max(64, count / 5)
    let singleTime = try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    var i = worker
                    while i < singleCount {
                        try await publisher.publish(message, routingKey: queue)
                        i += 64
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    _ = try await publisher.purgeQueue(queue)

    // Publishing and consuming at once: the time until the consumer has every message.
    let bothTime = try await AMQPWorkloads.publishAndConsume(
        message, count: count, batch: options.batch, prefetch: options.prefetch, queue: queue,
        publisher: publisher, consumer: consumerConnection)
    _ = try await publisher.deleteQueue(queue)
    await publisher.close()
    await consumerConnection.close()
    return AMQPFigures(
        publishBatched: Double(count) / publishTime, publishSingle64: Double(singleCount) / singleTime,
        consumeAck: Double(count) / consumeTime, publishConsume: Double(count) / bothTime)
}

// MARK: - AMQP, the C reference

struct ReferenceFigures: Decodable {
    var publish_batched_msgs_per_s: Double
    var consume_ack_msgs_per_s: Double
}

func run(_ executable: URL, _ arguments: [String]) throws -> Data {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw BenchError("\(executable.lastPathComponent) exited with \(process.terminationStatus)")
    }
    return data
}

func referenceRound(_ options: Options) throws -> ReferenceFigures {
    let url = try AMQPURL(string: options.amqpURL)
    let data = try run(
        siblingExecutable("amqp-reference"),
        [
            url.host, String(url.port), uniqueQueue("c"), String(options.messages), String(options.batch),
            String(options.bodyBytes), String(options.prefetch),
        ])
    return try JSONDecoder().decode(ReferenceFigures.self, from: data)
}

// MARK: - Redis

struct RedisFigures {
    var get1: Double
    var get1000: Double
    var set1000: Double
}

func redisRound(_ options: Options) async throws -> RedisFigures {
    let redis = try await RedisConnection.connect(RedisConfiguration(url: options.redisURL))
    let key = uniqueQueue("redis")
    _ = try await redis.set(key, to: "value-of-some-typical-length-0123456789")

    let sequential = options.redisOps / 10
    let get1 = try await seconds {
        for _ in 0..<sequential { _ = try await redis.get(key) }
    }
    let callers = 1_000
    let perCaller = options.redisOps / callers
    let get1000 = try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<callers {
                group.addTask { for _ in 0..<perCaller { _ = try await redis.get(key) } }
            }
            try await group.waitForAll()
        }
    }
    let set1000 = try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<callers {
                group.addTask { for _ in 0..<perCaller { _ = try await redis.set(key, to: "v") } }
            }
            try await group.waitForAll()
        }
    }
    _ = try await redis.del(key)
    await redis.close()
    return RedisFigures(
        get1: Double(sequential) / get1, get1000: Double(callers * perCaller) / get1000,
        set1000: Double(callers * perCaller) / set1000)
}

/// `redis-benchmark -c 1 -P 16`: one connection, 16 commands in flight, the best a single pipelined client does.
func redisBenchmarkRound(_ options: Options) throws -> (get: Double, set: Double) {
    let url = try RedisURL(string: options.redisURL)
    var arguments = [
        "-h", url.host, "-p", String(url.port), "-c", "1", "-P", "16", "-t", "get,set", "-n",
        String(options.redisOps), "--csv",
    ]
    if let password = url.password { arguments += ["-a", password, "--no-auth-warning"] }
    let data = try run(URL(fileURLWithPath: "/usr/bin/redis-benchmark"), arguments)
    var figures: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        if fields.count >= 2, let value = Double(fields[1]) { figures[fields[0]] = value }
    }
    guard let get = figures["GET"], let set = figures["SET"] else {
        throw BenchError("could not read redis-benchmark's output")
    }
    return (get, set)
}

// MARK: - main

let options = parsedOptions("ConveyorBenchmarks", Options.parse)

var ours: [AMQPFigures] = []
var reference: [ReferenceFigures] = []
var redisOurs: [RedisFigures] = []
var redisReference: [(get: Double, set: Double)] = []
do {
    for round in 0..<options.rounds {
        // Alternate which side goes first so neither always meets a warmer (or more tired) broker.
        if round % 2 == 0 {
            ours.append(try await amqpRound(options))
            reference.append(try referenceRound(options))
        } else {
            reference.append(try referenceRound(options))
            ours.append(try await amqpRound(options))
        }
        redisOurs.append(try await redisRound(options))
        redisReference.append(try redisBenchmarkRound(options))
    }
} catch {
    diagnose("ConveyorBenchmarks: \(error)")
    exit(1)
}

let publishBatched = median(ours.map(\.publishBatched))
let consumeAck = median(ours.map(\.consumeAck))
let refPublish = median(reference.map(\.publish_batched_msgs_per_s))
let refConsume = median(reference.map(\.consume_ack_msgs_per_s))
let get1000 = median(redisOurs.map(\.get1000))
let set1000 = median(redisOurs.map(\.set1000))
let refGet = median(redisReference.map(\.get))
let refSet = median(redisReference.map(\.set))

let figures: [String: Any] = [
    "benchmark": "foundation",
    "rounds": options.rounds,
    "messages": options.messages,
    "batch": options.batch,
    "body_bytes": options.bodyBytes,
    "amqp_publish_batched_msgs_per_s": rounded(publishBatched),
    "amqp_publish_single_64_tasks_msgs_per_s": rounded(median(ours.map(\.publishSingle64))),
    "amqp_consume_ack_msgs_per_s": rounded(consumeAck),
    "amqp_publish_and_consume_msgs_per_s": rounded(median(ours.map(\.publishConsume))),
    "c_reference_publish_batched_msgs_per_s": rounded(refPublish),
    "c_reference_consume_ack_msgs_per_s": rounded(refConsume),
    "ratio_publish_batched_vs_c": rounded(publishBatched / refPublish, 3),
    "ratio_consume_ack_vs_c": rounded(consumeAck / refConsume, 3),
    "redis_get_1_caller_ops_per_s": rounded(median(redisOurs.map(\.get1))),
    "redis_get_1000_callers_ops_per_s": rounded(get1000),
    "redis_set_1000_callers_ops_per_s": rounded(set1000),
    "redis_benchmark_c1_p16_get_ops_per_s": rounded(refGet),
    "redis_benchmark_c1_p16_set_ops_per_s": rounded(refSet),
    "ratio_get_1000_vs_redis_benchmark": rounded(get1000 / refGet, 3),
    "ratio_set_1000_vs_redis_benchmark": rounded(set1000 / refSet, 3),
]
printFigures(figures, program: "ConveyorBenchmarks")
