import Conveyor
import ConveyorWorker
import Distributed

/// `Counter`: the smallest stateful actor. Its count lives in the host's memory, so a failover starts it again
/// from ``Arguments/start``.
public distributed actor Counter: ConveyorActor {
    public typealias ActorSystem = ConveyorActorSystem

    public struct Arguments: Codable, Sendable {
        public var start: Int
        public init(start: Int = 0) { self.start = start }
    }

    var value: Int

    public init(actorSystem: ConveyorActorSystem, arguments: Arguments) {
        self.actorSystem = actorSystem
        self.value = arguments.start
    }

    /// Adds `by` and returns the new count.
    @discardableResult
    public distributed func increment(by: Int = 1) -> Int {
        value += by
        return value
    }

    public distributed func get() -> Int { value }

    /// The count plus `x`, the count unchanged: a pure call, for pools.
    public distributed func plus(_ x: Int) -> Int { value + x }
}

/// `Accumulator`: a durable actor. Its total and the number of additions are saved with each call's result, so
/// after a failover the new host continues from them.
public distributed actor Accumulator: DurableActor {
    public typealias ActorSystem = ConveyorActorSystem

    public struct Arguments: Codable, Sendable {
        public init() {}
    }

    public struct Snapshot: Codable, Sendable {
        public var total: Int
        public var additions: Int
    }

    var total = 0
    var additions = 0

    public init(actorSystem: ConveyorActorSystem, arguments: Arguments) {
        self.actorSystem = actorSystem
    }

    /// Adds `value`; returns the new total.
    @discardableResult
    public distributed func add(_ value: Int) -> Int {
        total += value
        additions += 1
        return total
    }

    public distributed func state() -> Snapshot { Snapshot(total: total, additions: additions) }

    public distributed func snapshot() -> Snapshot { Snapshot(total: total, additions: additions) }

    public distributed func restore(_ snapshot: Snapshot) {
        total = snapshot.total
        additions = snapshot.additions
    }
}

/// `Sleeper`: methods that take time, for concurrency limits and groups, and one that throws.
public distributed actor Sleeper: ConveyorActor {
    public typealias ActorSystem = ConveyorActorSystem

    public struct Arguments: Codable, Sendable {
        public init() {}
    }

    /// How many `nap`s and `write`s run now, and the most seen at once (per method).
    var napping = 0
    var writing = 0
    var mostNapping = 0
    var mostWriting = 0

    public init(actorSystem: ConveyorActorSystem, arguments: Arguments) {
        self.actorSystem = actorSystem
    }

    /// Sleeps `milliseconds`; returns how many naps ran at once at its start.
    public distributed func nap(milliseconds: Int) async throws -> Int {
        napping += 1
        mostNapping = max(mostNapping, napping)
        defer { napping -= 1 }
        try await Task.sleep(for: .milliseconds(milliseconds))
        return napping
    }

    /// Like ``nap(milliseconds:)``, for a concurrency group of its own.
    public distributed func write(milliseconds: Int) async throws -> Int {
        writing += 1
        mostWriting = max(mostWriting, writing)
        defer { writing -= 1 }
        try await Task.sleep(for: .milliseconds(milliseconds))
        return writing
    }

    /// The most naps and writes that ran at once so far.
    public distributed func peaks() -> [Int] { [mostNapping, mostWriting] }

    /// Throws ``ExampleActorError`` with `message`.
    public distributed func fail(message: String) throws -> Int {
        throw ExampleActorError(message: message)
    }
}

/// What ``Sleeper/fail(message:)`` throws.
public struct ExampleActorError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension Examples {
    /// The example actor types, as a worker registers them.
    public static var actors: ActorRegistry {
        var registry = ActorRegistry()
        registry.register(Counter.self)
        registry.register(Accumulator.self)
        registry.register(Sleeper.self)
        return registry
    }
}
