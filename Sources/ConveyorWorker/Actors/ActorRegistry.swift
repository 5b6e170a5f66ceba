import Conveyor
import Distributed

/// The actor types a worker can host, by ``ConveyorActor/actorTypeName``.
///
/// ```swift
/// var actors = ActorRegistry()
/// actors.register(Counter.self)
/// actors.register(Accumulator.self)  // a DurableActor: snapshots saved and restored
/// ```
public struct ActorRegistry: Sendable {
    var entries: [String: ActorTypeEntry] = [:]

    public init() {}

    /// Registers `type`: this worker can make it from its arguments.
    public mutating func register<Act: ConveyorActor>(_ type: Act.Type) {
        register(type, plain: ())
    }

    /// Registers durable `type`: after calls its snapshot is saved, and a new host restores the last one.
    public mutating func register<Act: DurableActor>(_ type: Act.Type) {
        register(type, plain: ())
        entries[Act.actorTypeName]?.snapshot = { instance in
            guard let actor = instance as? Act else { throw ActorInvocationError("not a \(Act.self)") }
            return try JSONValue(encoding: try await actor.snapshot())
        }
        entries[Act.actorTypeName]?.restore = { instance, snapshot in
            guard let actor = instance as? Act else { throw ActorInvocationError("not a \(Act.self)") }
            try await actor.restore(try snapshot.decode(as: Act.Snapshot.self))
        }
        entries[Act.actorTypeName]?.snapshotEvery = max(1, Act.snapshotEvery)
    }

    private mutating func register<Act: ConveyorActor>(_ type: Act.Type, plain: Void) {
        entries[Act.actorTypeName] = ActorTypeEntry(
            make: { system, id, arguments in
                let decoded = try arguments.decode(as: Act.Arguments.self)
                return try await system.withAssignedID(id) {
                    try await Act(actorSystem: system, arguments: decoded)
                }
            }, snapshot: nil, restore: nil, snapshotEvery: 0)
    }

    /// The registered type names.
    public var typeNames: [String] { entries.keys.sorted() }

    func entry(_ typeName: String) -> ActorTypeEntry? { entries[typeName] }
}

/// How a host makes, snapshots and restores one actor type.
struct ActorTypeEntry: Sendable {
    var make: @Sendable (ConveyorActorSystem, ConveyorActorID, JSONValue) async throws -> any DistributedActor
    var snapshot: (@Sendable (any DistributedActor) async throws -> JSONValue)?
    var restore: (@Sendable (any DistributedActor, JSONValue) async throws -> Void)?
    /// Save a snapshot after every this many calls; 0 for an actor that is not durable.
    var snapshotEvery: Int
}
