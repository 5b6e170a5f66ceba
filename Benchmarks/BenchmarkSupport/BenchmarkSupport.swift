// What the benchmark programs share: timing and statistics helpers, the one-JSON-line output, and the AMQP
// workloads whose figures more than one program reports (so they measure exactly the same thing).
import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation

/// A benchmark that cannot go on; its description is printed on stderr.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The wall-clock seconds `body` takes.
///
/// - Throws: what `body` throws.
public func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return (ContinuousClock.now - start).seconds
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
public func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

/// The `fraction` quantile (0...1) of values already sorted ascending, nearest rank; 0 for none.
public func quantile(sorted values: [Double], _ fraction: Double) -> Double {
    guard !values.isEmpty else { return 0 }
    let rank = Int((fraction * Double(values.count)).rounded(.up))
    return values[min(max(rank, 1), values.count) - 1]
}

/// `value` rounded to `places` decimals, so the JSON line stays readable.
public func rounded(_ value: Double, _ places: Double = 0) -> Double {
    let scale = pow(10, places)
    return (value * scale).rounded() / scale
}

/// A queue name no other run uses: `bench-<what>-<8 hex digits>`.
public func uniqueQueue(_ what: String) -> String { "bench-\(what)-\(UUID().uuidString.prefix(8).lowercased())" }

/// A command-line value that must be a whole number above zero.
///
/// - Throws: ``BenchError`` naming `flag` when it is not.
/// Walks `--flag value` pairs (the program name first is skipped), handing each to `apply`; an option with no
/// value is an error, and `apply` throws for the flags it does not know.
public func parseFlags(_ arguments: [String], _ apply: (_ flag: String, _ value: String) throws -> Void) throws {
    var iterator = arguments.dropFirst().makeIterator()
    while let flag = iterator.next() {
        guard let value = iterator.next() else { throw BenchError("\(flag) needs a value") }
        try apply(flag, value)
    }
}

public func positiveInt(_ text: String, _ flag: String) throws -> Int {
    guard let value = Int(text), value > 0 else { throw BenchError("\(flag) takes a positive whole number") }
    return value
}

/// A program built next to the running one (same build folder), such as the C reference or a worker.
public func siblingExecutable(_ name: String) -> URL {
    let own = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
    return own.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name)
}

/// Writes `line` and a newline to stderr: progress and diagnostics never mix with the JSON on stdout.
public func diagnose(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Prints `figures` as one JSON line (keys sorted) on stdout; exits with status 1 if they are not JSON.
public func printFigures(_ figures: [String: Any], program: String) {
    guard let line = try? JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys]) else {
        diagnose("\(program): figures are not JSON")
        exit(1)
    }
    print(String(decoding: line, as: UTF8.self))
}

// MARK: - AMQP workloads

/// The AMQP workloads shared by the benchmarks. Each gets its connections and queue from the caller.
public enum AMQPWorkloads {
    /// Publishes `count` copies of `message` to `queue` in confirmed batches of `batch`, awaiting each batch's
    /// confirms before sending the next.
    ///
    /// - Throws: the ``AMQPError`` of a publish.
    public static func publishAll(
        _ message: AMQPMessage, count: Int, batch: Int, to queue: String, on publisher: AMQPConnection
    ) async throws {
        var sent = 0
        while sent < count {
            let n = min(batch, count - sent)
            try await publisher.publish(batch: Array(repeating: AMQPOutgoing(message, routingKey: queue), count: n))
            sent += n
        }
    }

    /// Consumes `count` messages from `queue` with `prefetch` and acks each, as a worker does, then cancels the
    /// subscription.
    ///
    /// - Throws: the ``AMQPError`` of the subscription, or ``BenchError`` if it ends before `count` messages.
    public static func consumeAndAck(
        count: Int, from queue: String, prefetch: UInt16, on connection: AMQPConnection
    ) async throws {
        let consumer = try await connection.consume(queue: queue, prefetch: prefetch)
        try await drain(consumer, count: count)
    }

    /// Publishing and consuming at once: seconds from the first publish until the consumer has acked all
    /// `count` messages (the foundation benchmark's `amqp_publish_and_consume_msgs_per_s`).
    ///
    /// - Throws: as ``publishAll(_:count:batch:to:on:)`` and ``consumeAndAck(count:from:prefetch:on:)``.
    public static func publishAndConsume(
        _ message: AMQPMessage, count: Int, batch: Int, prefetch: UInt16, queue: String,
        publisher: AMQPConnection, consumer consumerConnection: AMQPConnection
    ) async throws -> Double {
        try await seconds {
            let consumer = try await consumerConnection.consume(queue: queue, prefetch: prefetch)
            async let published: Void = publishAll(message, count: count, batch: batch, to: queue, on: publisher)
            try await drain(consumer, count: count)
            try await published
        }
    }

    /// ``publishAndConsume(_:count:batch:prefetch:queue:publisher:consumer:)`` on two fresh connections and a
    /// fresh `declaration` queue (deleted afterwards), in msgs/s.
    ///
    /// - Throws: the ``AMQPError`` of a connect, declare, publish or delete.
    public static func publishAndConsumeRate(
        url: String, message: AMQPMessage, count: Int, batch: Int, prefetch: UInt16, declaration: AMQPQueue
    ) async throws -> Double {
        let publisher = try await AMQPConnection.connect(url: url, connectionName: "bench-publisher")
        let consumer: AMQPConnection
        do {
            consumer = try await AMQPConnection.connect(url: url, connectionName: "bench-consumer")
        } catch {
            await publisher.close()
            throw error
        }
        do {
            _ = try await publisher.declare(declaration)
            let time = try await publishAndConsume(
                message, count: count, batch: batch, prefetch: prefetch, queue: declaration.name,
                publisher: publisher, consumer: consumer)
            _ = try await publisher.deleteQueue(declaration.name)
            await publisher.close()
            await consumer.close()
            return Double(count) / time
        } catch {
            _ = try? await publisher.deleteQueue(declaration.name)
            await publisher.close()
            await consumer.close()
            throw error
        }
    }

    private static func drain(_ consumer: AMQPConsumer, count: Int) async throws {
        var received = 0
        for try await delivery in consumer {
            _ = delivery.ack()
            received += 1
            if received == count { break }
        }
        await consumer.cancel()
        guard received == count else { throw BenchError("the subscription ended after \(received) of \(count)") }
    }
}

/// Deletes every Redis key under `prefix` (SCAN, then DEL per page): a benchmark's keys all start with a prefix of
/// its own run, so this leaves nothing behind and touches nothing else.
///
/// - Throws: the ``RedisError`` of a call, or ``BenchError`` for a reply that is not SCAN's.
public func deleteKeys(under prefix: String, on redis: RedisClient) async throws {
    var cursor = "0"
    repeat {
        let reply = try await redis.send(RedisCommand("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"))
        guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let found = parts[1].array else {
            throw BenchError("unexpected SCAN reply: \(reply)")
        }
        let names = found.compactMap(\.string)
        if !names.isEmpty { _ = try await redis.del(names) }
        cursor = next
    } while cursor != "0"
}

/// The program's options parsed by `parse` from its command line; on an error, the error on stderr and exit 2
/// (a usage error), so every benchmark refuses bad flags alike.
public func parsedOptions<Options>(_ program: String, _ parse: ([String]) throws -> Options) -> Options {
    do {
        return try parse(CommandLine.arguments)
    } catch {
        diagnose("\(program): \(error)")
        exit(2)
    }
}
