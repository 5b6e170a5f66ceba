import BenchmarkSupport
import Conveyor
import ConveyorAMQP
import ConveyorExamples
import ConveyorRedis
import ConveyorWorker
import Foundation

// Calls to one actor (an example `Counter` hosted in this process by a `ConveyorActorHost`, over the real
// broker and Redis): throughput from one caller with `--in-flight` calls outstanding, and the latency of
// sequential calls. The reference, measured in the same run just before, is the foundation benchmark's raw
// publish-and-consume rate (`AMQPWorkloads.publishAndConsume`) with as many messages as calls, each the size and
// shape of a call message. Prints one JSON line. Flags: --calls N (throughput calls), --sequential N,
// --in-flight N.

func flag(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: "--" + name), index + 1 < arguments.count,
        let parsed = Int(arguments[index + 1]), parsed > 0
    else { return value }
    return parsed
}

let totalCalls = flag("calls", default: 20_000)
let sequentialCalls = flag("sequential", default: 2_000)
let inFlight = flag("in-flight", default: 100)

var configuration = ConveyorConfiguration.fromEnvironment()
configuration.keyPrefix = "bench-actors-\(TaskID.make().prefix(8)):"
configuration.resultKeyPrefix = configuration.keyPrefix
configuration.logger.logLevel = .warning
let host = ConveyorActorHost(configuration: configuration, registry: Examples.actors)
let system = try await ConveyorActorSystem.connect(configuration)

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await host.run() }
    let counter = try await system.spawn(Counter.self, .init(), options: .init(readyTimeout: .seconds(60)))
    for _ in 0..<200 { try await counter.increment() }

    // The reference: the broker alone moving as many call-sized messages through a durable classic queue.
    let properties = AMQPProperties(
        contentType: "application/json", contentEncoding: "utf-8",
        headers: [
            "conveyor_kind": "actor-call", "conveyor_actor_id": .string(counter.id.rawValue),
            "conveyor_method": "$s16ConveyorExamples7CounterC9increment2byS2i_tYaKFTE",
        ], deliveryMode: .persistent, correlationId: TaskID.make(), replyTo: system.client.clientID)
    let raw = try await AMQPWorkloads.publishAndConsumeRate(
        url: configuration.brokerURLs[0], message: AMQPMessage(body: Array("[1]".utf8), properties: properties),
        count: totalCalls, batch: 500, prefetch: 200, declaration: AMQPQueue(uniqueQueue("actor-raw")))

    let clock = ContinuousClock()
    let started = clock.now
    var issued = 0
    try await withThrowingTaskGroup(of: Int.self) { calls in
        while issued < min(inFlight, totalCalls) {
            calls.addTask { try await counter.increment() }
            issued += 1
        }
        while try await calls.next() != nil {
            if issued < totalCalls {
                calls.addTask { try await counter.increment() }
                issued += 1
            }
        }
    }
    let elapsed = clock.now - started
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let throughput = Double(totalCalls) / seconds

    var latencies: [Double] = []
    latencies.reserveCapacity(sequentialCalls)
    for _ in 0..<sequentialCalls {
        let start = clock.now
        try await counter.increment()
        let took = clock.now - start
        latencies.append(Double(took.components.seconds) * 1e3 + Double(took.components.attoseconds) / 1e15)
    }
    latencies.sort()
    let final = try await counter.get()
    let expected = 200 + totalCalls + sequentialCalls
    try await system.kill(counter)
    let p50 = String(format: "%.3f", percentile(latencies, 0.5))
    let p99 = String(format: "%.3f", percentile(latencies, 0.99))
    print(
        #"{"benchmark": "actor-calls", "calls": \#(totalCalls), "in_flight": \#(inFlight), "#
            + #""calls_per_s": \#(Int(throughput.rounded())), "raw_broker_msgs_per_s": \#(Int(raw.rounded())), "#
            + #""ratio_calls_to_raw": \#(String(format: "%.3f", throughput / raw)), "#
            + #""sequential_calls": \#(sequentialCalls), "p50_ms": \#(p50), "p99_ms": \#(p99), "#
            + #""count_ok": \#(final == expected)}"#)
    host.shutdown()
    try await group.waitForAll()
}
// Every key this run made (the actor's record, call results) is under its own prefix.
try await deleteKeys(under: configuration.keyPrefix, on: system.client.redis)
await system.close()
