import Conveyor
import ConveyorRedis
import ConveyorWorker

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

    /// What `examples.fail` throws.
    public struct ExampleError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public init(message: String) { self.message = message }
        public var description: String { message }
    }

    /// Registers every example's implementation.
    public static func register(into registry: inout TaskRegistry) {
        registry.register(Noop.self) { _, _ in .null }
        registry.register(Add.self) { input, _ in
            if let delay = input.delay, delay > 0 {
                try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
            }
            return input.a + input.b
        }
        registry.register(Sleep.self) { input, _ in
            try await Task.sleep(for: .milliseconds(Int64(max(0, input.seconds) * 1000)))
            return input.seconds
        }
        registry.register(Fail.self) { input, _ in throw ExampleError(message: input.message) }
        registry.register(Progress.self) { input, context in
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
        registry.register(Record.self) { input, context in
            _ = try await context.redis.send(RedisCommand("RPUSH", input.key, context.id), timeout: nil)
            return input.token
        }
    }

    /// A registry holding the examples.
    public static var registry: TaskRegistry {
        var registry = TaskRegistry()
        register(into: &registry)
        return registry
    }
}
