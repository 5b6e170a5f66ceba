import Distributed

/// A distributed actor type Conveyor's workers can host: made from Codable ``Arguments`` by its initialiser, which
/// runs on a worker (and again on another worker after a failover).
///
/// ```swift
/// distributed actor Counter: ConveyorActor {
///     typealias ActorSystem = ConveyorActorSystem
///     struct Arguments: Codable, Sendable { var start = 0 }
///     var value: Int
///     init(actorSystem: ConveyorActorSystem, arguments: Arguments) {
///         self.actorSystem = actorSystem
///         value = arguments.start
///     }
///     distributed func increment() -> Int { value += 1; return value }
/// }
/// ```
public protocol ConveyorActor: DistributedActor where ActorSystem == ConveyorActorSystem {
    /// What ``ConveyorActorSystem/spawn(_:_:options:)`` sends to the host's initialiser.
    associatedtype Arguments: Codable & Sendable
    /// The type's name in the registry, the same in every process (defaults to the module-qualified type name).
    static var actorTypeName: String { get }
    /// Makes the instance on its host.
    init(actorSystem: ConveyorActorSystem, arguments: Arguments) async throws
}

extension ConveyorActor {
    public static var actorTypeName: String { String(reflecting: Self.self) }
}

/// An actor whose state survives its host: after a failover the new host runs the initialiser, then
/// ``restore(_:)`` with the last snapshot, saved in Redis together with the result of the call that produced it.
public protocol DurableActor: ConveyorActor {
    associatedtype Snapshot: Codable & Sendable
    /// Save a snapshot after every this many calls (1: after each call, so a failover repeats no call's effect).
    static var snapshotEvery: Int { get }
    /// The state to save, taken right after a call returned (before the next one starts when calls run one at a
    /// time).
    distributed func snapshot() async throws -> Snapshot
    /// Puts back a saved state; called once on a new host, after the initialiser and before any call.
    distributed func restore(_ snapshot: Snapshot) async throws
}

extension DurableActor {
    public static var snapshotEvery: Int { 1 }
}
