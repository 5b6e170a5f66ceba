/// How an actor is created: its name, lifetime, restarts, and how many calls it runs and queues at once.
///
/// ```swift
/// let counter = try await system.spawn(
///     Counter.self, .init(), options: .init(name: "hits", namespace: "web", getIfExists: true, lifetime: .detached))
/// ```
public struct ActorOptions: Sendable, Hashable, Codable {
    /// Whether the actor outlives the ``ConveyorActorSystem`` that created it.
    public enum Lifetime: String, Sendable, Hashable, Codable {
        /// Lives until killed (or until its restarts are used up), whoever created it.
        case detached
        /// Killed when the creating system is closed (``ConveyorActorSystem/close()``).
        case owned
    }

    /// A named set of methods with a concurrency limit of its own (Ray's concurrency groups).
    public struct ConcurrencyGroup: Sendable, Hashable, Codable {
        /// The group's name (unique per actor).
        public var name: String
        /// How many calls of the group's methods run at once (at least 1).
        public var maxConcurrency: Int
        /// The methods in the group, by base name (`"write"` for `distributed func write(_:)`).
        public var methods: [String]

        public init(name: String, maxConcurrency: Int, methods: [String]) {
            self.name = name
            self.maxConcurrency = maxConcurrency
            self.methods = methods
        }
    }

    /// The actor's name; `nil` for an anonymous actor, reachable only through the reference `spawn` returns.
    public var name: String?
    /// The namespace the name lives in.
    public var namespace: String
    /// With a name that is taken by a live actor: return that actor instead of failing with
    /// ``ActorError/nameTaken(name:namespace:)``. Atomic: of two processes racing, both get the same actor.
    public var getIfExists: Bool
    public var lifetime: Lifetime
    /// How often another worker may take the actor over after its host died; `-1` means without limit.
    /// The default, 0, is Ray's: an actor whose host dies is dead.
    public var maxRestarts: Int
    /// Calls of methods outside every ``concurrencyGroups`` entry that run at once (default 1: one at a time, in
    /// order). Above 1, calls interleave at their suspension points, as Swift actors' reentrancy allows.
    public var maxConcurrency: Int
    public var concurrencyGroups: [ConcurrencyGroup]
    /// Calls that may wait in the actor's mailbox (not counting those running); a call beyond it fails at once
    /// with ``ActorError/mailboxFull(actor:limit:)``. `nil`: no bound.
    public var maxPendingCalls: Int?
    /// How long ``ConveyorActorSystem/spawn(_:_:options:)`` waits for a worker to run the initialiser; `nil`
    /// returns as soon as the creation is queued (an initialiser's error then surfaces on the first call).
    public var readyTimeout: Duration?

    public init(
        name: String? = nil, namespace: String = "default", getIfExists: Bool = false,
        lifetime: Lifetime = .owned, maxRestarts: Int = 0, maxConcurrency: Int = 1,
        concurrencyGroups: [ConcurrencyGroup] = [], maxPendingCalls: Int? = nil,
        readyTimeout: Duration? = .seconds(30)
    ) {
        self.name = name
        self.namespace = namespace
        self.getIfExists = getIfExists
        self.lifetime = lifetime
        self.maxRestarts = maxRestarts
        self.maxConcurrency = maxConcurrency
        self.concurrencyGroups = concurrencyGroups
        self.maxPendingCalls = maxPendingCalls
        self.readyTimeout = readyTimeout
    }

    /// Refuses options no host could honour.
    ///
    /// - Throws: ``ActorError/invalidOptions(_:)`` naming the option.
    public func validate() throws {
        if let name, name.isEmpty || name.contains(":") {
            throw ActorError.invalidOptions("name must be non-empty and contain no ':'")
        }
        if namespace.contains(":") { throw ActorError.invalidOptions("namespace must contain no ':'") }
        if maxConcurrency < 1 { throw ActorError.invalidOptions("maxConcurrency must be at least 1") }
        if maxRestarts < -1 { throw ActorError.invalidOptions("maxRestarts must be -1 (no limit) or more") }
        if let maxPendingCalls, maxPendingCalls < 0 {
            throw ActorError.invalidOptions("maxPendingCalls must be 0 or more")
        }
        var seen = Set<String>()
        for group in concurrencyGroups {
            if group.maxConcurrency < 1 {
                throw ActorError.invalidOptions("concurrency group '\(group.name)' needs maxConcurrency ≥ 1")
            }
            if !seen.insert(group.name).inserted {
                throw ActorError.invalidOptions("concurrency group '\(group.name)' is named twice")
            }
        }
    }

    /// The group each grouped method belongs to.
    public var groupOfMethod: [String: String] {
        var map: [String: String] = [:]
        for group in concurrencyGroups { for method in group.methods { map[method] = group.name } }
        return map
    }

    /// Calls that run at once over all groups: what a host's prefetch must at least allow.
    public var totalConcurrency: Int {
        concurrencyGroups.reduce(maxConcurrency) { $0 + $1.maxConcurrency }
    }

    // Codable without the client-side readyTimeout: the record in Redis describes the actor, not one spawn call.
    enum CodingKeys: String, CodingKey {
        case name, namespace, getIfExists, lifetime, maxRestarts, maxConcurrency, concurrencyGroups, maxPendingCalls
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name),
            namespace: try c.decodeIfPresent(String.self, forKey: .namespace) ?? "default",
            getIfExists: try c.decodeIfPresent(Bool.self, forKey: .getIfExists) ?? false,
            lifetime: try c.decodeIfPresent(Lifetime.self, forKey: .lifetime) ?? .owned,
            maxRestarts: try c.decodeIfPresent(Int.self, forKey: .maxRestarts) ?? 0,
            maxConcurrency: try c.decodeIfPresent(Int.self, forKey: .maxConcurrency) ?? 1,
            concurrencyGroups: try c.decodeIfPresent([ConcurrencyGroup].self, forKey: .concurrencyGroups) ?? [],
            maxPendingCalls: try c.decodeIfPresent(Int.self, forKey: .maxPendingCalls))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encode(namespace, forKey: .namespace)
        try c.encode(getIfExists, forKey: .getIfExists)
        try c.encode(lifetime, forKey: .lifetime)
        try c.encode(maxRestarts, forKey: .maxRestarts)
        try c.encode(maxConcurrency, forKey: .maxConcurrency)
        try c.encode(concurrencyGroups, forKey: .concurrencyGroups)
        try c.encodeIfPresent(maxPendingCalls, forKey: .maxPendingCalls)
    }
}

/// What the actor system throws, besides the broker's and Redis's own errors.
public enum ActorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No live actor has this name in this namespace.
    case notFound(name: String, namespace: String)
    /// The name belongs to a live actor and ``ActorOptions/getIfExists`` was off.
    case nameTaken(name: String, namespace: String)
    /// The named actor exists but is of another type.
    case typeMismatch(name: String, expected: String, actual: String)
    /// The actor was killed (``ConveyorActorSystem/kill(_:reason:)``); it takes no more calls.
    case killed(actor: String, reason: String)
    /// The actor's host died more often than ``ActorOptions/maxRestarts`` allows, or its initialiser failed.
    case dead(actor: String, reason: String)
    /// The actor's mailbox holds ``ActorOptions/maxPendingCalls`` calls already; this one was refused.
    case mailboxFull(actor: String, limit: Int)
    /// The actor's method threw: the error's type and message, as the host recorded them.
    case callFailed(actor: String, method: String, type: String, message: String)
    /// No answer within the time waited (the call may still run later).
    case timeout(actor: String, after: Duration)
    /// The actor's result could not be decoded as the method's return type.
    case resultDecoding(actor: String, reason: String)
    /// Options no host could honour.
    case invalidOptions(String)
    /// The system was closed.
    case closed

    public var description: String {
        switch self {
        case .notFound(let name, let namespace): "no actor named '\(name)' in namespace '\(namespace)'"
        case .nameTaken(let name, let namespace):
            "an actor named '\(name)' already lives in namespace '\(namespace)' (use getIfExists to share it)"
        case .typeMismatch(let name, let expected, let actual):
            "actor '\(name)' is a \(actual), not a \(expected)"
        case .killed(let actor, let reason): "actor \(actor) was killed: \(reason)"
        case .dead(let actor, let reason): "actor \(actor) is dead: \(reason)"
        case .mailboxFull(let actor, let limit):
            "actor \(actor) has \(limit) pending calls already (maxPendingCalls); call refused"
        case .callFailed(let actor, let method, let type, let message):
            "call \(method) on actor \(actor) failed: \(type): \(message)"
        case .timeout(let actor, let after): "actor \(actor) did not answer within \(after)"
        case .resultDecoding(let actor, let reason): "the result from actor \(actor) cannot be decoded: \(reason)"
        case .invalidOptions(let text): "invalid actor options: \(text)"
        case .closed: "the actor system was closed"
        }
    }
}
