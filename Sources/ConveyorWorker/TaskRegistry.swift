import Conveyor

/// The task implementations a worker runs, by task name.
///
/// ```swift
/// var registry = TaskRegistry()
/// registry.register(Resize.self, options: .init(retry: .init(maxRetries: 3))) { input, context in
///     try await resize(input.url, to: input.width)
/// }
/// let worker = ConveyorWorker(configuration: .fromEnvironment(), registry: registry)
/// ```
///
/// The definition (``TaskDefinition``) is shared with producers; the registry attaches the code to it.
public struct TaskRegistry: Sendable {
    /// The registered implementations, by task name.
    var tasks: [String: RegisteredTask] = [:]

    public init() {}

    /// Registers the implementation of `definition`. Registering a name again replaces its implementation.
    ///
    /// - Parameters:
    ///   - options: retries and time limits for this task; a message's own `timelimit` header wins over them.
    ///   - body: the task. It receives the decoded input and a ``TaskContext`` (progress, retry, cancellation by
    ///     time limit or revocation arrives as task cancellation). What it returns is the result; what it throws
    ///     is recorded as FAILURE with the error's type and message, or retried under ``TaskRunOptions/retry``.
    public mutating func register<Definition: TaskDefinition>(
        _ definition: Definition.Type, options: TaskRunOptions = TaskRunOptions(),
        _ body: @escaping @Sendable (Definition.Input, TaskContext) async throws -> Definition.Output
    ) {
        tasks[Definition.name] = RegisteredTask(
            name: Definition.name, options: options, argumentNames: Definition.argumentNames
        ) { envelope in
            // Decoded once, before the claim: a bad input is dead-lettered without ever taking a lease.
            let input = try Definition.decodeInput(from: envelope)
            return { context in try ResultEncoding.json(try await body(input, context)) }
        }
    }

    /// Registers an implementation by name that takes the raw JSON arguments (for tasks without a Swift
    /// definition, e.g. called only from Python) and returns any JSON value.
    public mutating func register(
        name: String, options: TaskRunOptions = TaskRunOptions(),
        _ body:
            @escaping @Sendable (_ args: [JSONValue], _ kwargs: [String: JSONValue], TaskContext) async throws ->
            JSONValue
    ) {
        tasks[name] = RegisteredTask(name: name, options: options, argumentNames: []) { envelope in
            { context in try await body(envelope.args, envelope.kwargs, context).jsonBytes() }
        }
    }

    /// The registered task names, sorted.
    public var names: [String] { tasks.keys.sorted() }

    /// Whether `name` has an implementation.
    public func contains(_ name: String) -> Bool { tasks[name] != nil }

    subscript(name: String) -> RegisteredTask? { tasks[name] }
}

/// One implementation, type-erased: an envelope's input is decoded into a run that yields the result's JSON.
struct RegisteredTask: Sendable {
    typealias Run = @Sendable (TaskContext) async throws -> [UInt8]
    let name: String
    let options: TaskRunOptions
    /// Celery's positional argument names (``TaskDefinition/argumentNames``), for per-key rate limit keys.
    let argumentNames: [String]
    /// Throws ``TaskInputError`` when the envelope's arguments do not decode as the input.
    let prepare: @Sendable (TaskEnvelope) throws -> Run
    /// `stream` for a generator, whose outcome is recorded together with its stream's end marker.
    var kind: TaskKind = .task
}

/// How a task runs: its retry policy, default time limits, and fleet-wide rate limit and concurrency cap.
public struct TaskRunOptions: Sendable, Hashable {
    public var retry: RetryPolicy
    /// Default limits when the message carries none (Celery's `time_limit`, `soft_time_limit`, in seconds).
    public var timeLimit: TaskEnvelope.TimeLimit
    /// At most this many runs per period across every worker (Celery's `rate_limit`, but fleet-wide and kept in
    /// Redis): `try RateLimit("100/s")`. A run over the limit gets a later time slot and waits for it in the Redis
    /// delay set, holding no execution slot. `nil`: no limit, and no cost.
    public var rateLimit: RateLimit?
    /// Counts ``rateLimit`` per key rather than per task name (per customer, say): each key has the whole rate,
    /// independently of the others. A message without a key counts under the task name.
    public var rateLimitKey: RateLimitKey?
    /// At most this many runs of the task's ``pool`` at once across every worker, by leases in Redis renewed by
    /// heartbeats (a dead worker's slots come back when its leases lapse). A run over the cap waits in the Redis
    /// delay set, holding no execution slot, until a slot is released. `nil`: no cap.
    public var maxRunning: Int?
    /// The pool ``maxRunning`` counts in: tasks that name the same pool share its slots (give them the same
    /// ``maxRunning``). The task name when `nil`.
    public var pool: String?

    public init(
        retry: RetryPolicy = RetryPolicy(), timeLimit: TaskEnvelope.TimeLimit = .init(), rateLimit: RateLimit? = nil,
        rateLimitKey: RateLimitKey? = nil, maxRunning: Int? = nil, pool: String? = nil
    ) {
        self.retry = retry
        self.timeLimit = timeLimit
        self.rateLimit = rateLimit
        self.rateLimitKey = rateLimitKey
        self.maxRunning = maxRunning.map { max(1, $0) }
        self.pool = pool
    }
}

extension TaskEnvelope.TimeLimit: Hashable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(hard)
        hasher.combine(soft)
    }
}

/// When a failed task runs again: Celery's `max_retries` with exponential backoff and full jitter.
///
/// A task that throws ``TaskRetry`` (``TaskContext/retry(after:reason:)``) is retried while its retries are below
/// ``maxRetries``; other errors are retried only when ``retryOnError`` is set. Past the limit the last error is
/// recorded as FAILURE.
public struct RetryPolicy: Sendable, Hashable {
    /// How many times a task may be retried (Celery's `max_retries`, 3 by default).
    public var maxRetries: Int
    /// Whether any thrown error (not only ``TaskRetry``) is retried (Celery's `autoretry_for=(Exception,)`).
    public var retryOnError: Bool
    /// The delay before the first retry.
    public var initialDelay: Duration
    /// Each retry waits this many times longer than the one before.
    public var multiplier: Double
    /// No delay is longer than this (Celery's `retry_backoff_max`, 600 s).
    public var maxDelay: Duration
    /// Spread each delay uniformly over `[delay/2, delay]` so a burst of failures does not come back at once.
    public var jitter: Bool

    public init(
        maxRetries: Int = 3, retryOnError: Bool = false, initialDelay: Duration = .seconds(1), multiplier: Double = 2,
        maxDelay: Duration = .seconds(600), jitter: Bool = true
    ) {
        self.maxRetries = max(0, maxRetries)
        self.retryOnError = retryOnError
        self.initialDelay = initialDelay
        self.multiplier = max(1, multiplier)
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    /// The delay before retry number `retries + 1` (`retries` retries happened before).
    public func delay(afterRetries retries: Int) -> Duration {
        let base = Double(initialDelay.wholeMillisecondsValue) * pow(multiplier, Double(max(0, retries)))
        let capped = min(base, Double(maxDelay.wholeMillisecondsValue))
        let spread = jitter ? Double.random(in: (capped / 2)...max(capped / 2, capped)) : capped
        return .milliseconds(Int64(spread.rounded()))
    }
}

/// Thrown by a task to ask for another run later (Celery's `self.retry()`); see ``TaskContext/retry(after:reason:)``.
public struct TaskRetry: Error, Sendable, Hashable, CustomStringConvertible {
    /// The delay; the task's ``RetryPolicy`` backoff when `nil`.
    public var after: Duration?
    /// Recorded as the RETRY state's error message.
    public var reason: String

    public init(after: Duration? = nil, reason: String = "retry requested") {
        self.after = after
        self.reason = reason
    }

    public var description: String { reason }
}

extension Duration {
    /// Whole milliseconds, for delays and limits.
    var wholeMillisecondsValue: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    /// Seconds as a `Double`.
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
