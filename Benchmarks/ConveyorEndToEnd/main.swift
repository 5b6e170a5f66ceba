// Conveyor's tasks end to end: a producer (ConveyorClient) and one worker process running examples.noop, measured
// against the raw broker rate in the same run, so the figures are read as ratios.
//
//   swift run -c release ConveyorEndToEndBenchmark [--tasks N] [--sequential N] [--rounds R] [--batch B]
//       [--worker-concurrency C] [--wait overlap|after] [--raw on|off] [--worker-log-level L]
//       [--worker-rate-limit 1000000/s] [--admission on|off] [--admission-rate-limit 1000000/s]
//       [--queue-type quorum|classic] [--amqp-url URL] [--redis-url URL]
//
// The worker is `conveyor-examples-worker` from the same build folder, started on a queue and key prefix of its
// own, stopped (SIGTERM) at the end, when both are deleted. Prints one JSON line; progress goes to stderr.
//
// The admission rounds (`--admission on`, the default) run the same tasks with admission control on: a unique
// idempotency key per task (`submitMany(_:_:idempotencyKeys:options:)`) and a second worker, alike but on its own
// queue and key prefix, whose examples.noop has a rate limit that never binds (`--admission-rate-limit`). Both
// workers run throughout, and plain and admission rounds alternate which goes first, so `admission_ratio` compares
// like with like.
import BenchmarkSupport
import Conveyor
import ConveyorAMQP
import ConveyorExamples
import ConveyorIO
import ConveyorRedis
import Foundation

let program = "ConveyorEndToEndBenchmark"

struct Options {
    var tasks = 20_000
    var sequential = 1_000
    var rounds = 3
    /// Tasks per `submitMany`.
    var batch = 1_000
    var workerConcurrency = 64
    var workerLogLevel = "notice"
    /// A fleet-wide rate limit on examples.noop in the worker (`1000000/s` never binds): the cost of the check.
    var workerRateLimit: String?
    /// Whether to run the admission rounds, and the admission worker's rate limit on examples.noop (`none`: keys
    /// only, to tell the two costs apart).
    var admission = true
    var admissionRateLimit = "1000000/s"
    /// `overlap`: each batch's results are awaited as soon as it is submitted; `after`: one `wait` for all the
    /// refs once every batch is submitted.
    var waitMode = WaitMode.overlap
    /// The foundation benchmark's settings for the raw rate (its `amqp_publish_and_consume_msgs_per_s`).
    var rawBatch = 500
    var rawPrefetch: UInt16 = 200
    /// `--raw off` skips the raw rate (its figures read 0): for profiling the end-to-end path alone.
    var raw = true
    /// The task queues' type, `CONVEYOR_QUEUE_TYPE` for the workers and the clients' topology: `quorum` (the
    /// default) or `classic`.
    var queueType = TaskQueueType.quorum
    var timeout = Duration.seconds(300)
    var amqpURL = ProcessInfo.processInfo.environment["CONVEYOR_BROKER_URL"] ?? ConveyorConfiguration.defaultBrokerURL
    var redisURL = ProcessInfo.processInfo.environment["CONVEYOR_REDIS_URL"] ?? ConveyorConfiguration.defaultRedisURL

    enum WaitMode: String {
        case overlap
        case after
    }

    static func parse(_ arguments: [String]) throws -> Options {
        var options = Options()
        try parseFlags(arguments) { flag, value in
            switch flag {
            case "--tasks": options.tasks = try positiveInt(value, flag)
            case "--sequential": options.sequential = try positiveInt(value, flag)
            case "--rounds": options.rounds = try positiveInt(value, flag)
            case "--batch": options.batch = try positiveInt(value, flag)
            case "--worker-concurrency": options.workerConcurrency = try positiveInt(value, flag)
            case "--worker-log-level": options.workerLogLevel = value
            case "--worker-rate-limit": options.workerRateLimit = value
            case "--admission":
                guard value == "on" || value == "off" else { throw BenchError("--admission takes on or off") }
                options.admission = value == "on"
            case "--admission-rate-limit": options.admissionRateLimit = value
            case "--wait":
                guard let mode = WaitMode(rawValue: value) else { throw BenchError("--wait takes overlap or after") }
                options.waitMode = mode
            case "--raw":
                guard value == "on" || value == "off" else { throw BenchError("--raw takes on or off") }
                options.raw = value == "on"
            case "--queue-type":
                guard let type = TaskQueueType(rawValue: value) else {
                    throw BenchError("--queue-type takes quorum or classic")
                }
                options.queueType = type
            case "--amqp-url": options.amqpURL = value
            case "--redis-url": options.redisURL = value
            default: throw BenchError("unknown option \(flag)")
            }
        }
        return options
    }
}

// MARK: - The worker process

/// `conveyor-examples-worker` as a child process.
final class WorkerProcess {
    let process = Process()
    var pid: Int32 { process.processIdentifier }

    init(queue: String, prefix: String, rateLimit: String?, options: Options) throws {
        let executable = siblingExecutable("conveyor-examples-worker")
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw BenchError("no worker at \(executable.path): build the conveyor-examples-worker product first")
        }
        process.executableURL = executable
        process.arguments = [
            "--queues", queue, "--concurrency", String(options.workerConcurrency), "--log-level",
            options.workerLogLevel,
        ]
        if let limit = rateLimit {
            process.arguments? += ["--rate-limit", limit, "--limit-tasks", Examples.Noop.name]
        }
        var environment = ProcessInfo.processInfo.environment
        environment["CONVEYOR_BROKER_URL"] = options.amqpURL
        environment["CONVEYOR_REDIS_URL"] = options.redisURL
        environment["CONVEYOR_PREFIX"] = prefix
        environment["CONVEYOR_QUEUE_TYPE"] = options.queueType.rawValue
        process.environment = environment
        // Its log lines go to our stderr, with the other diagnostics.
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    /// SIGTERM (a graceful shutdown), then SIGKILL if it is still there after `grace`.
    func stop(grace: Duration = .seconds(40)) async {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            diagnose("\(program): the worker did not stop within \(grace); killing it")
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// `VmRSS` and `VmHWM` (peak) of a process, in MiB, from `/proc/<pid>/status`.
func residentMemory(pid: Int32) throws -> (current: Double, peak: Double) {
    let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    var fields: [String: Double] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
        if parts.count >= 2, let kB = Double(parts[1]) { fields[String(parts[0])] = kB / 1024 }
    }
    guard let rss = fields["VmRSS"], let peak = fields["VmHWM"] else {
        throw BenchError("no VmRSS/VmHWM in /proc/\(pid)/status")
    }
    return (rss, peak)
}

/// User + system CPU seconds a process has used, from `/proc/<pid>/stat` (fields 14 and 15, in clock ticks).
func cpuSeconds(pid: Int32) throws -> Double {
    let text = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
    guard let close = text.lastIndex(of: ")") else { throw BenchError("cannot read /proc/\(pid)/stat") }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
        throw BenchError("cannot read /proc/\(pid)/stat")
    }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Polls until `queue` has a consumer (the worker subscribed), the worker exits, or a minute passes.
func waitUntilConsuming(_ queue: String, worker: WorkerProcess, admin: AMQPConnection) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
        guard worker.isRunning else { throw BenchError("the worker exited before consuming") }
        if let info = try await admin.queueInfo(queue), info.consumerCount >= 1 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw BenchError("the worker did not start consuming \(queue) within a minute")
}

// MARK: - Workloads

/// A message the size and shape of a submitted examples.noop: its real headers and body, built as the client
/// builds them.
func noopMessage(replyTo: String) throws -> AMQPMessage {
    let envelope = TaskEnvelope(
        task: Examples.Noop.name, kwargs: try Examples.Noop.encodeInput(.init()),
        origin: "\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)",
        replyTo: replyTo, conveyor: [ConveyorHeader.sentMs.rawValue: .int(MillisecondClock.now())])
    let properties = AMQPProperties(
        contentType: "application/json", contentEncoding: "utf-8", headers: AMQPTable(json: envelope.celeryHeaders),
        deliveryMode: .persistent, correlationId: envelope.id, replyTo: replyTo)
    return AMQPMessage(body: Array(try envelope.celeryBody()), properties: properties)
}

struct RawFigures {
    /// The foundation benchmark's queue: durable, classic.
    var classic: Double
    /// A quorum queue, the type Conveyor declares for its task queues.
    var quorum: Double
}

func rawRound(_ options: Options, message: AMQPMessage) async throws -> RawFigures {
    guard options.raw else { return RawFigures(classic: 0, quorum: 0) }
    func rate(_ declaration: AMQPQueue) async throws -> Double {
        try await AMQPWorkloads.publishAndConsumeRate(
            url: options.amqpURL, message: message, count: options.tasks, batch: options.rawBatch,
            prefetch: options.rawPrefetch, declaration: declaration)
    }
    let classic = try await rate(AMQPQueue(uniqueQueue("raw")))
    var quorum = AMQPQueue(uniqueQueue("raw-quorum"))
    quorum.queueType = .quorum
    return RawFigures(classic: classic, quorum: try await rate(quorum))
}

struct EndToEndFigures {
    var tasksPerSecond: Double
    var workerCPUPerTask: Double
    /// The Redis server's CPU per task (0 when it is not a local process this user can read): it also serves
    /// whatever else shares it.
    var redisCPUPerTask: Double
    var clientCPUPerTask: Double
    /// The mean time one `submitMany` took, until its refs were returned (the producer's share of the path).
    var submitSecondsPerBatch: Double
    /// The tasks' ids, for the cleanup.
    var ids: [String]
}

/// Submits `options.tasks` noops in batches and waits for every result: tasks per second from the first submit
/// to the last result. With `keyPrefix`, each task has its own idempotency key (`keyPrefix` + its number).
func endToEndRound(
    _ client: ConveyorClient, queue: String, worker: WorkerProcess, options: Options, keyPrefix: String? = nil
) async throws -> EndToEndFigures {
    let taskOptions = TaskOptions(queue: queue)
    let inputs = Array(repeating: Examples.Noop.Input(), count: options.batch)
    let timeout = options.timeout
    let workerCPU = try cpuSeconds(pid: worker.pid)
    let redisServer = redisPID.withLock { $0 }
    let redisCPU = redisServer.flatMap { try? cpuSeconds(pid: $0) }
    let clientCPU = try cpuSeconds(pid: ProcessInfo.processInfo.processIdentifier)
    var refs: [ObjectRef<JSONValue>] = []
    refs.reserveCapacity(options.tasks)
    var submitting = Duration.zero
    var batches = 0
    /// The next batch, keyed or not.
    func submitBatch(_ count: Int) async throws -> [ObjectRef<JSONValue>] {
        let batch = Array(inputs.prefix(count))
        let keys = keyPrefix.map { prefix in (refs.count..<refs.count + count).map { prefix + String($0) } }
        let start = ContinuousClock.now
        defer {
            submitting += ContinuousClock.now - start
            batches += 1
        }
        guard let keys else { return try await client.submitMany(Examples.Noop.self, batch, options: taskOptions) }
        return try await client.submitMany(Examples.Noop.self, batch, idempotencyKeys: keys, options: taskOptions)
    }
    let elapsed = try await seconds {
        switch options.waitMode {
        case .overlap:
            try await withThrowingTaskGroup(of: Int.self) { group in
                while refs.count < options.tasks {
                    let batch = try await submitBatch(min(options.batch, options.tasks - refs.count))
                    refs += batch
                    group.addTask { try await client.wait(batch, timeout: timeout).pending.count }
                }
                for try await pending in group where pending > 0 {
                    throw BenchError("\(pending) tasks not finished within \(timeout)")
                }
            }
        case .after:
            while refs.count < options.tasks {
                refs += try await submitBatch(min(options.batch, options.tasks - refs.count))
            }
            let pending = try await client.wait(refs, timeout: timeout).pending.count
            if pending > 0 { throw BenchError("\(pending) tasks not finished within \(timeout)") }
        }
    }
    let tasks = Double(refs.count)
    let figures = EndToEndFigures(
        tasksPerSecond: tasks / elapsed,
        workerCPUPerTask: (try cpuSeconds(pid: worker.pid) - workerCPU) / tasks,
        redisCPUPerTask: redisCPU.flatMap { before in redisServer.flatMap { try? cpuSeconds(pid: $0) - before } }
            .map { $0 / tasks } ?? 0,
        clientCPUPerTask: (try cpuSeconds(pid: ProcessInfo.processInfo.processIdentifier) - clientCPU) / tasks,
        submitSecondsPerBatch: submitting.seconds / Double(max(1, batches)), ids: refs.map(\.id))
    // Ready is not the same as succeeded: a noop that failed would throw here.
    for ref in [refs.first, refs.last].compactMap({ $0 }) { _ = try await ref.get(timeout: timeout) }
    return figures
}

struct RoundTrips {
    var p50: Double
    var p99: Double
    var max: Double
    /// The median time `submit` took (publish until the broker's confirm), part of the round trip.
    var submitP50: Double
    /// The tasks' ids, for the cleanup.
    var ids: [String]
}

/// `count` times: submit one noop and `get()` it. Latencies in milliseconds.
func sequentialRound(_ client: ConveyorClient, queue: String, count: Int) async throws -> RoundTrips {
    let options = TaskOptions(queue: queue)
    var latencies: [Double] = []
    var submits: [Double] = []
    var ids: [String] = []
    latencies.reserveCapacity(count)
    for _ in 0..<count {
        let start = ContinuousClock.now
        let ref = try await client.submit(Examples.Noop.self, .init(), options: options)
        submits.append((ContinuousClock.now - start).seconds * 1000)
        _ = try await ref.get(timeout: .seconds(30))
        latencies.append((ContinuousClock.now - start).seconds * 1000)
        ids.append(ref.id)
    }
    latencies.sort()
    return RoundTrips(
        p50: quantile(sorted: latencies, 0.50), p99: quantile(sorted: latencies, 0.99), max: latencies.last ?? 0,
        submitP50: median(submits), ids: ids)
}

/// Deletes the result keys of `ids` and every key under `prefix` (task records, state indexes, the fence).
func deleteKeys(ids: [String], prefix: String, keys: RedisKeys, redis: RedisClient) async throws {
    var start = 0
    while start < ids.count {
        let chunk = ids[start..<min(start + 1_000, ids.count)]
        _ = try await redis.del(chunk.map { keys.result($0) })
        start += chunk.count
    }
    try await BenchmarkSupport.deleteKeys(under: prefix, on: redis)
}

// MARK: - main

let options = parsedOptions(program, Options.parse)

let queue = uniqueQueue("e2e")
let prefix = queue + ":"
/// The admission worker's queue and key prefix (its idempotency keys live there too).
let admissionQueue = uniqueQueue("e2e-admission")
let admissionPrefix = admissionQueue + ":"
var worker: WorkerProcess?
var admissionWorker: WorkerProcess?
var admin: AMQPConnection?
var client: ConveyorClient?
var admissionClient: ConveyorClient?
var taskIDs: [String] = []
var admissionTaskIDs: [String] = []
var figures: [String: Any]?
/// The workers' pids for the signal handler, which runs on another thread.
let workerPIDs = LockedValue<[Int32]>([])

// Ctrl-C or a kill of the benchmark stops the workers too; the queues then stay behind (their names start with
// `bench-e2e-`).
signal(SIGINT, SIG_IGN)
signal(SIGTERM, SIG_IGN)
let signalSources = [SIGINT, SIGTERM].map { [queue] number in
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler {
        for pid in workerPIDs.withLock({ $0 }) where pid > 0 { kill(pid, SIGTERM) }
        diagnose("\(program): interrupted; the workers were asked to stop, queue \(queue) is left behind")
        exit(130)
    }
    source.resume()
    return source
}

/// The three measurements of a round.
enum Side {
    case raw
    case plain
    case admission
}

/// The Redis server's pid when it runs on this machine and its `/proc` entry is readable (`INFO server`).
let redisPID = LockedValue<Int32?>(nil)

/// Connects a client to the worker on `queue`.
func connectClient(queue: String, prefix: String) async throws -> ConveyorClient {
    try await ConveyorClient.connect(
        ConveyorConfiguration(
            brokerURLs: [options.amqpURL], redisURL: options.redisURL, keyPrefix: prefix, defaultQueue: queue,
            topology: TaskQueueTopology(queueType: options.queueType)))
}

do {
    diagnose("\(program): worker on queue \(queue) (\(options.queueType)), concurrency \(options.workerConcurrency)")
    let started = try WorkerProcess(queue: queue, prefix: prefix, rateLimit: options.workerRateLimit, options: options)
    worker = started
    workerPIDs.withLock { $0.append(started.pid) }
    var admissionStarted: WorkerProcess?
    if options.admission {
        diagnose("\(program): admission worker on queue \(admissionQueue), rate limit \(options.admissionRateLimit)")
        let second = try WorkerProcess(
            queue: admissionQueue, prefix: admissionPrefix,
            rateLimit: options.admissionRateLimit == "none" ? nil : options.admissionRateLimit, options: options)
        admissionStarted = second
        admissionWorker = second
        workerPIDs.withLock { $0.append(second.pid) }
    }
    let adminConnection = try await AMQPConnection.connect(url: options.amqpURL, connectionName: "bench-admin")
    admin = adminConnection
    try await waitUntilConsuming(queue, worker: started, admin: adminConnection)
    if let admissionStarted {
        try await waitUntilConsuming(admissionQueue, worker: admissionStarted, admin: adminConnection)
    }

    let connected = try await connectClient(queue: queue, prefix: prefix)
    client = connected
    let info = try await connected.redis.send(RedisCommand("INFO", "server")).string ?? ""
    if let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("process_id:") }),
        let pid = Int32(line.dropFirst("process_id:".count)), (try? cpuSeconds(pid: pid)) != nil
    {
        redisPID.withLock { $0 = pid }
    }
    // Warm-up: the queue check, the notification subscription, the worker's first runs.
    taskIDs += try await sequentialRound(connected, queue: queue, count: 50).ids
    var admissionConnected: ConveyorClient?
    if options.admission {
        let second = try await connectClient(queue: admissionQueue, prefix: admissionPrefix)
        admissionClient = second
        admissionConnected = second
        admissionTaskIDs += try await sequentialRound(second, queue: admissionQueue, count: 50).ids
    }
    let message = try noopMessage(replyTo: connected.clientID)

    var raw: [RawFigures] = []
    var endToEnd: [EndToEndFigures] = []
    var admission: [EndToEndFigures] = []
    var roundTrips: [RoundTrips] = []
    /// A key prefix no earlier run used, so every admission task is new.
    let runKey = UUID().uuidString.prefix(8).lowercased()
    for round in 0..<options.rounds {
        // Alternate the order so neither side always meets a warmer (or more tired) broker: raw, plain,
        // admission in even rounds, the reverse in odd ones.
        let order: [Side] = round % 2 == 0 ? [.raw, .plain, .admission] : [.admission, .plain, .raw]
        for side in order {
            switch side {
            case .raw:
                raw.append(try await rawRound(options, message: message))
            case .plain:
                endToEnd.append(try await endToEndRound(connected, queue: queue, worker: started, options: options))
            case .admission:
                guard let admissionConnected, let admissionStarted else { continue }
                let figures = try await endToEndRound(
                    admissionConnected, queue: admissionQueue, worker: admissionStarted, options: options,
                    keyPrefix: "bench-\(runKey)-\(round)-")
                admission.append(figures)
                admissionTaskIDs += figures.ids
            }
        }
        taskIDs += endToEnd[round].ids
        roundTrips.append(try await sequentialRound(connected, queue: queue, count: options.sequential))
        taskIDs += roundTrips[round].ids
        let admissionText =
            admission.count > round
            ? ", admission \(Int(admission[round].tasksPerSecond)) tasks/s "
                + "(ratio \(rounded(admission[round].tasksPerSecond / endToEnd[round].tasksPerSecond, 3)))" : ""
        diagnose(
            "\(program): round \(round + 1): raw \(Int(raw[round].classic)) msgs/s (quorum \(Int(raw[round].quorum))), "
                + "end to end \(Int(endToEnd[round].tasksPerSecond)) tasks/s\(admissionText), round trip p50 "
                + "\(rounded(roundTrips[round].p50, 3)) ms p99 \(rounded(roundTrips[round].p99, 3)) ms")
    }
    let memory = try residentMemory(pid: started.pid)

    let e2e = median(endToEnd.map(\.tasksPerSecond))
    let rawClassic = median(raw.map(\.classic))
    let rawQuorum = median(raw.map(\.quorum))
    let admitted = admission.isEmpty ? 0 : median(admission.map(\.tasksPerSecond))
    figures = [
        "benchmark": "end_to_end",
        "rounds": options.rounds,
        "tasks": options.tasks,
        "sequential": options.sequential,
        "batch": options.batch,
        "wait": options.waitMode.rawValue,
        "queue_type": options.queueType.rawValue,
        "worker_concurrency": options.workerConcurrency,
        "raw_batch": options.rawBatch,
        "raw_prefetch": Int(options.rawPrefetch),
        "raw_message_body_bytes": message.body.count,
        "e2e_tasks_per_s": rounded(e2e),
        "e2e_tasks_per_s_rounds": endToEnd.map { rounded($0.tasksPerSecond) },
        "raw_broker_msgs_per_s": rounded(rawClassic),
        "raw_broker_msgs_per_s_rounds": raw.map { rounded($0.classic) },
        "raw_broker_quorum_msgs_per_s": rounded(rawQuorum),
        "ratio_e2e_to_raw": rawClassic > 0 ? rounded(e2e / rawClassic, 3) : 0,
        "ratio_e2e_to_raw_rounds": zip(endToEnd, raw).map { pair in
            pair.1.classic > 0 ? rounded(pair.0.tasksPerSecond / pair.1.classic, 3) : 0
        },
        "ratio_e2e_to_raw_quorum": rawQuorum > 0 ? rounded(e2e / rawQuorum, 3) : 0,
        "roundtrip_p50_ms": rounded(median(roundTrips.map(\.p50)), 3),
        "roundtrip_p99_ms": rounded(median(roundTrips.map(\.p99)), 3),
        "roundtrip_max_ms": rounded(roundTrips.map(\.max).max() ?? 0, 3),
        "roundtrip_submit_p50_ms": rounded(median(roundTrips.map(\.submitP50)), 3),
        "worker_cpu_us_per_task": rounded(median(endToEnd.map(\.workerCPUPerTask)) * 1e6, 1),
        "client_cpu_us_per_task": rounded(median(endToEnd.map(\.clientCPUPerTask)) * 1e6, 1),
        "redis_cpu_us_per_task": rounded(median(endToEnd.map(\.redisCPUPerTask)) * 1e6, 1),
        "submit_ms_per_batch": rounded(median(endToEnd.map(\.submitSecondsPerBatch)) * 1000, 2),
        "worker_rss_mb": rounded(memory.current, 1),
        "worker_peak_rss_mb": rounded(memory.peak, 1),
        // Admission control on (a key per task, a non-binding rate limit) against the plain rounds above.
        "admission_rate_limit": options.admission ? options.admissionRateLimit : "",
        "admission_tasks_per_s": rounded(admitted),
        "admission_tasks_per_s_rounds": admission.map { rounded($0.tasksPerSecond) },
        "admission_ratio": e2e > 0 ? rounded(admitted / e2e, 3) : 0,
        "admission_ratio_rounds": zip(admission, endToEnd).map { pair in
            pair.1.tasksPerSecond > 0 ? rounded(pair.0.tasksPerSecond / pair.1.tasksPerSecond, 3) : 0
        },
        "admission_worker_cpu_us_per_task": admission.isEmpty
            ? 0 : rounded(median(admission.map(\.workerCPUPerTask)) * 1e6, 1),
        "admission_client_cpu_us_per_task": admission.isEmpty
            ? 0 : rounded(median(admission.map(\.clientCPUPerTask)) * 1e6, 1),
        "admission_redis_cpu_us_per_task": admission.isEmpty
            ? 0 : rounded(median(admission.map(\.redisCPUPerTask)) * 1e6, 1),
        "admission_submit_ms_per_batch": admission.isEmpty
            ? 0 : rounded(median(admission.map(\.submitSecondsPerBatch)) * 1000, 2),
    ]
} catch {
    diagnose("\(program): \(error)")
}

// Cleanup, also after an error: keys, workers, queues, connections.
for (cleaned, ids, keyPrefix) in [(client, taskIDs, prefix), (admissionClient, admissionTaskIDs, admissionPrefix)] {
    guard let cleaned else { continue }
    do {
        try await deleteKeys(ids: ids, prefix: keyPrefix, keys: cleaned.store.keys, redis: cleaned.redis)
    } catch {
        diagnose("\(program): could not delete the keys under \(keyPrefix): \(error)")
    }
    await cleaned.close()
}
await worker?.stop()
await admissionWorker?.stop()
if let admin {
    let topology = TaskQueueTopology()
    for name in [queue, admissionQueue].flatMap({ [$0, topology.deadLetterQueue(for: $0)] }) {
        do {
            _ = try await admin.deleteQueue(name)
        } catch {
            diagnose("\(program): could not delete queue \(name): \(error)")
        }
    }
    await admin.close()
}
withExtendedLifetime(signalSources) {}

guard let figures else { exit(1) }
printFigures(figures, program: program)
