import Conveyor
import ConveyorRedis
import ConveyorWorker
import Foundation

/// The example tasks the README, the demo, the tests and the benchmark use. Each definition is what a producer
/// needs; ``register(into:)`` attaches the implementations on a worker.
public enum Examples {
    /// `examples.noop()` → `null`: the cheapest possible task, for measuring the machinery around it.
    public enum Noop: TaskDefinition {
        public static let name = "examples.noop"
        public struct Input: Codable, Sendable {
            public init() {}
        }
        public typealias Output = JSONValue
    }

    /// `examples.add(a, b)` → `a + b`; with the keyword argument `delay` (seconds), after sleeping that long
    /// (cancellable), so a demo's tasks can be kept in flight long enough to stop workers and servers under them.
    public enum Add: TaskDefinition {
        public static let name = "examples.add"
        public static let argumentNames = ["a", "b"]
        public struct Input: Codable, Sendable {
            public var a: Int
            public var b: Int
            /// Seconds to sleep before answering; absent (and not sent) unless set.
            public var delay: Double?
            public init(a: Int, b: Int, delay: Double? = nil) {
                self.a = a
                self.b = b
                self.delay = delay
            }
        }
        public typealias Output = Int
    }

    /// `examples.sleep(seconds)` → `seconds`, after sleeping that long (cancellable).
    public enum Sleep: TaskDefinition {
        public static let name = "examples.sleep"
        public static let argumentNames = ["seconds"]
        public struct Input: Codable, Sendable {
            public var seconds: Double
            public init(seconds: Double) { self.seconds = seconds }
        }
        public typealias Output = Double
    }

    /// `examples.fail(message)` throws ``ExampleError`` with `message`.
    public enum Fail: TaskDefinition {
        public static let name = "examples.fail"
        public static let argumentNames = ["message"]
        public struct Input: Codable, Sendable {
            public var message: String
            public init(message: String) { self.message = message }
        }
        public typealias Output = JSONValue
    }

    /// `examples.progress(steps, delay = 0.05)` reports progress after each step and returns `steps`.
    public enum Progress: TaskDefinition {
        public static let name = "examples.progress"
        public static let argumentNames = ["steps", "delay"]
        public struct Input: Codable, Sendable {
            public var steps: Int
            /// Seconds per step.
            public var delay: Double?
            public init(steps: Int, delay: Double? = nil) {
                self.steps = steps
                self.delay = delay
            }
        }
        public typealias Output = Int
    }

    /// `examples.record(key, token)` appends its own task id to the Redis list `key` each time it runs to
    /// completion and returns `token`: tests count runs per task with it.
    public enum Record: TaskDefinition {
        public static let name = "examples.record"
        public static let argumentNames = ["key", "token"]
        public struct Input: Codable, Sendable {
            public var key: String
            public var token: String
            public init(key: String, token: String) {
                self.key = key
                self.token = token
            }
        }
        public typealias Output = String
    }

    /// `examples.limited(key, seconds, customer)` appends `"s <ms> <id>"` to the Redis list `key` when it starts and
    /// `"e <ms> <id>"` when it ends, sleeping `seconds` in between, and returns `seconds`. Workers give it a rate
    /// limit or a concurrency cap (``registry(limited:)``, `--rate-limit`, `--max-running`); tests read the list to
    /// check them. `customer` is there to be a per-key rate limit's key.
    public enum Limited: TaskDefinition {
        public static let name = "examples.limited"
        public static let argumentNames = ["key", "seconds", "customer"]
        public struct Input: Codable, Sendable {
            public var key: String
            public var seconds: Double
            public var customer: String?
            public init(key: String, seconds: Double = 0, customer: String? = nil) {
                self.key = key
                self.seconds = seconds
                self.customer = customer
            }
        }
        public typealias Output = Double
    }

    /// `examples.count(n, delay_ms = 0)`, a generator: yields `0..<n`, waiting `delay_ms` before each item.
    public enum Count: StreamDefinition {
        public static let name = "examples.count"
        public static let argumentNames = ["n", "delay_ms"]
        public struct Input: Codable, Sendable {
            public var n: Int
            /// Milliseconds before each item.
            public var delayMs: Int?
            public init(n: Int, delayMs: Int? = nil) {
                self.n = n
                self.delayMs = delayMs
            }
            enum CodingKeys: String, CodingKey {
                case n
                case delayMs = "delay_ms"
            }
        }
        public typealias Output = Int
        public typealias Element = Int
    }

    /// `examples.tokens(text, delay_ms = 20)`, a generator: yields the words of `text`, one every `delay_ms`, as a
    /// language model streams tokens.
    public enum Tokens: StreamDefinition {
        public static let name = "examples.tokens"
        public static let argumentNames = ["text", "delay_ms"]
        public struct Input: Codable, Sendable {
            public var text: String
            /// Milliseconds before each word.
            public var delayMs: Int?
            public init(text: String, delayMs: Int? = nil) {
                self.text = text
                self.delayMs = delayMs
            }
            enum CodingKeys: String, CodingKey {
                case text
                case delayMs = "delay_ms"
            }
        }
        public typealias Output = Int
        public typealias Element = String
    }

    /// What `examples.fail` throws.
    public struct ExampleError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    /// Registers every example's implementation; the tasks named in `tasks` run under `limited`.
    public static func register(
        into registry: inout TaskRegistry, limited: TaskRunOptions = TaskRunOptions(),
        tasks: Set<String> = [Limited.name]
    ) {
        func options(_ name: String) -> TaskRunOptions { tasks.contains(name) ? limited : TaskRunOptions() }
        registry.register(Noop.self, options: options(Noop.name)) { _, _ in .null }
        registry.register(Add.self, options: options(Add.name)) { input, _ in
            if let delay = input.delay, delay > 0 {
                try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
            return input.a + input.b
        }
        registry.register(Sleep.self, options: options(Sleep.name)) { input, _ in
            try await Task.sleep(for: .milliseconds(Int64(max(0, input.seconds) * 1000)))
            return input.seconds
        }
        registry.register(Fail.self, options: options(Fail.name)) { input, _ in
            throw ExampleError(message: input.message)
        }
        registry.register(Progress.self, options: options(Progress.name)) { input, context in
            let steps = max(0, input.steps)
            let delay = Duration.milliseconds(Int64(max(0, input.delay ?? 0.05) * 1000))
            for step in 0..<steps {
                try await Task.sleep(for: delay)
                try await context.progress(
                    Double(step + 1) / Double(steps), message: "step \(step + 1) of \(steps)",
                    current: Double(step + 1), total: Double(steps))
            }
            return steps
        }
        registry.register(Record.self, options: options(Record.name)) { input, context in
            _ = try await context.redis.send(RedisCommand("RPUSH", input.key, context.id), timeout: nil)
            return input.token
        }
        registry.register(Limited.self, options: options(Limited.name)) { input, context in
            func mark(_ event: String) async throws {
                let ms = Int64((Date().timeIntervalSince1970 * 1000).rounded())
                _ = try await context.redis.send(
                    RedisCommand("RPUSH", input.key, "\(event) \(ms) \(context.id)"), timeout: nil)
            }
            try await mark("s")
            try await Task.sleep(for: .milliseconds(Int64(max(0, input.seconds) * 1000)))
            try await mark("e")
            return input.seconds
        }
        registerStreams(into: &registry)
    }

    /// Registers the example generators' implementations (part of ``register(into:)``).
    public static func registerStreams(into registry: inout TaskRegistry) {
        registry.registerStream(Count.self) { input, stream in
            let delay = Duration.milliseconds(max(0, input.delayMs ?? 0))
            for value in 0..<max(0, input.n) {
                if delay > .zero { try await Task.sleep(for: delay) }
                try await stream.yield(value)
            }
        }
        registry.registerStream(Tokens.self) { input, stream in
            let delay = Duration.milliseconds(max(0, input.delayMs ?? 20))
            for word in input.text.split(whereSeparator: \.isWhitespace) {
                try await Task.sleep(for: delay)
                try await stream.yield(String(word))
            }
        }
    }

    /// A registry holding the examples.
    public static var registry: TaskRegistry { registry(limited: TaskRunOptions()) }

    /// A registry holding the examples, those named in `tasks` running under `limited`.
    public static func registry(limited: TaskRunOptions, tasks: Set<String> = [Limited.name]) -> TaskRegistry {
        var registry = TaskRegistry()
        register(into: &registry, limited: limited, tasks: tasks)
        return registry
    }
}
