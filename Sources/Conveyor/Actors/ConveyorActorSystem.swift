import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Distributed
import Foundation

/// Conveyor's `DistributedActorSystem` (DESIGN §6): every actor has a durable mailbox queue in RabbitMQ with a
/// single active consumer (so one host at a time runs its calls, in order) and a record in Redis (its name,
/// placement, status, restarts and, for a ``DurableActor``, its last snapshot). Workers running a
/// `ConveyorActorHost` with the actor's type registered host it; when the host dies another one takes over.
///
/// ```swift
/// let system = try await ConveyorActorSystem.connect()
/// let counter = try await system.spawn(
///     Counter.self, .init(), options: .init(name: "hits", getIfExists: true, lifetime: .detached))
/// let n = try await counter.increment()
/// await system.close()
/// ```
///
/// A call publishes one confirmed message to the mailbox (`conveyor_kind: actor-call`) and waits, like a task's
/// ``ObjectRef``, for the host to write the result under `celery-task-meta-<call id>` and name the call on the
/// client's `P notify:<client id>` channel (docs/PROTOCOL.md, "Actors").
///
/// - Important: one system per process is enough; every method may be called from any task.
public final class ConveyorActorSystem: DistributedActorSystem, Sendable {
    public typealias ActorID = ConveyorActorID
    public typealias InvocationEncoder = ConveyorInvocationEncoder
    public typealias InvocationDecoder = ConveyorInvocationDecoder
    public typealias ResultHandler = ConveyorResultHandler
    public typealias SerializationRequirement = Codable

    /// The client whose connections calls go over and whose notification channel answers them.
    public let client: ConveyorClient
    public let store: ActorStore
    /// How long a call waits for its answer; `nil` waits until the calling task is cancelled.
    public let callTimeout: Duration?
    let ownsClient: Bool
    /// Instances this process hosts, by id: what ``resolve(id:as:)`` returns instead of a remote reference.
    let hosted = LockedValue<[ConveyorActorID: any DistributedActor]>([:])
    /// Actors with ``ActorOptions/Lifetime/owned`` this system spawned: killed by ``close()``.
    let owned = LockedValue<Set<ConveyorActorID>>([])
    /// How calls reach each actor's mailbox: through a ``MailboxBatcher`` (calls in flight together share a
    /// message), or one message per call for a bounded mailbox, whose bound counts messages.
    let mailboxes = LockedValue<[ConveyorActorID: MailboxBatcher?]>([:])
    /// The id a host's initialiser call must be given (see ``assignID(_:)``).
    static let assigningID = TaskLocal<ConveyorActorID?>(wrappedValue: nil)

    /// A system over an existing client (which the caller closes).
    public init(client: ConveyorClient, callTimeout: Duration? = .seconds(300)) {
        self.client = client
        self.store = ActorStore(redis: client.redis, keys: client.store.keys)
        self.callTimeout = callTimeout
        self.ownsClient = false
    }

    private init(ownedClient client: ConveyorClient, callTimeout: Duration?) {
        self.client = client
        self.store = ActorStore(redis: client.redis, keys: client.store.keys)
        self.callTimeout = callTimeout
        self.ownsClient = true
    }

    /// Connects a client of its own (closed by ``close()``).
    ///
    /// - Throws: what ``ConveyorClient/connect(_:)`` throws.
    public static func connect(
        _ configuration: ConveyorConfiguration = .fromEnvironment(), callTimeout: Duration? = .seconds(300)
    ) async throws -> ConveyorActorSystem {
        ConveyorActorSystem(ownedClient: try await ConveyorClient.connect(configuration), callTimeout: callTimeout)
    }

    /// Kills the ``ActorOptions/Lifetime/owned`` actors this system spawned, then closes the client if the
    /// system connected it.
    public func close() async {
        let ids = owned.withLock { owned in
            defer { owned.removeAll() }
            return owned
        }
        for id in ids {
            do {
                try await kill(id: id, reason: "its owner closed", waitForHost: .zero)
            } catch {
                client.logger.warning(
                    "could not kill an owned actor", metadata: ["actor": .string(id.rawValue), "error": "\(error)"])
            }
        }
        if ownsClient { await client.close() }
    }

    // MARK: Creating and finding actors

    /// Creates an actor of type `Act` on some worker that hosts the type, or returns the live one with the same
    /// name when ``ActorOptions/getIfExists`` is set (atomic: racing processes get one actor).
    ///
    /// The mailbox is declared and the creation message queued before this returns, so calls made at once are
    /// kept until a host runs them. With ``ActorOptions/readyTimeout`` set (the default), it waits for a host to
    /// run the initialiser.
    ///
    /// - Returns: a reference whose `distributed` methods are calls to the actor.
    /// - Throws: ``ActorError/invalidOptions(_:)``, ``ActorError/nameTaken(name:namespace:)``,
    ///   ``ActorError/typeMismatch(name:expected:actual:)``, ``ActorError/dead(actor:reason:)`` when the
    ///   initialiser threw, ``ActorError/timeout(actor:after:)`` when no host ran it in time, or the broker's and
    ///   Redis's errors.
    public func spawn<Act: ConveyorActor>(
        _ type: Act.Type, _ arguments: Act.Arguments, options: ActorOptions = ActorOptions()
    ) async throws -> Act {
        try options.validate()
        let typeName = Act.actorTypeName
        let id = ConveyorActorID(TaskID.make())
        let argumentsJSON = try JSONValue(encoding: arguments)
        // The mailbox exists before the record: a worker that learns of the actor can subscribe at once.
        try await declareMailbox(id, options: options)
        let outcome: ActorStore.SpawnOutcome
        do {
            outcome = try await store.spawn(
                id: id.rawValue, type: typeName, options: options, arguments: argumentsJSON, owner: client.clientID)
        } catch {
            _ = try? await client.broker.deleteQueue(id.queue)
            throw error
        }
        switch outcome {
        case .existing(let existing, let existingType):
            _ = try? await client.broker.deleteQueue(id.queue)
            guard existingType == typeName else {
                throw ActorError.typeMismatch(name: options.name ?? "", expected: typeName, actual: existingType)
            }
            return try Act.resolve(id: ConveyorActorID(existing), using: self)
        case .taken:
            _ = try? await client.broker.deleteQueue(id.queue)
            throw ActorError.nameTaken(name: options.name ?? "", namespace: options.namespace)
        case .created:
            break
        }
        if options.lifetime == .owned { owned.withLock { _ = $0.insert(id) } }
        remember(id, bounded: options.maxPendingCalls != nil)
        let createID = TaskID.make()
        let waiter = ResultWaiter(id: createID)
        if options.readyTimeout != nil {
            try await client.ensureNotifications()
            client.waiters.add(waiter)
        }
        defer { client.waiters.remove(waiter) }
        try await publish(
            to: id, kind: "actor-create", callID: createID, method: nil, body: Array("{}".utf8),
            limit: options.maxPendingCalls)
        _ = try await client.redis.send(
            RedisCommand("PUBLISH", store.keys.actorEvents, "created \(id.rawValue) \(typeName)"))
        if let readyTimeout = options.readyTimeout {
            let meta = try await wait(for: waiter, actor: id, timeout: readyTimeout)
            if meta.state != .success {
                let failure = meta.failure ?? TaskFailure(type: "UnknownError", message: "\(meta.result)")
                throw ActorError.dead(actor: id.rawValue, reason: "\(failure.type): \(failure.message)")
            }
        }
        return try Act.resolve(id: id, using: self)
    }

    /// The live actor named `name` in `namespace`.
    ///
    /// - Throws: ``ActorError/notFound(name:namespace:)``, ``ActorError/typeMismatch(name:expected:actual:)``,
    ///   or Redis's errors.
    public func actor<Act: ConveyorActor>(
        named name: String, namespace: String = "default", as type: Act.Type = Act.self
    ) async throws -> Act {
        guard let id = try await store.lookup(name: name, namespace: namespace),
            let record = try await store.record(id), record.isLive
        else { throw ActorError.notFound(name: name, namespace: namespace) }
        guard record.type == Act.actorTypeName else {
            throw ActorError.typeMismatch(name: name, expected: Act.actorTypeName, actual: record.type)
        }
        remember(ConveyorActorID(id), bounded: record.options.maxPendingCalls != nil)
        return try Act.resolve(id: ConveyorActorID(id), using: self)
    }

    /// Stops `actor` for good: no restart; calls still in its mailbox and every later call fail with
    /// ``ActorError/killed(actor:reason:)``; its name is free again.
    ///
    /// - Throws: Redis's and the broker's errors.
    public func kill<Act: DistributedActor>(_ actor: Act, reason: String = "killed") async throws
    where Act.ID == ConveyorActorID {
        try await kill(id: actor.id, reason: reason)
    }

    /// ``kill(_:reason:)`` by id. The host fails the queued calls and deletes the mailbox; if none has done so
    /// within `waitForHost` (no host is running, say) the mailbox is deleted here.
    ///
    /// - Throws: Redis's and the broker's errors.
    public func kill(
        id: ConveyorActorID, reason: String = "killed", waitForHost: Duration = .seconds(3)
    )
        async throws
    {
        try await store.end(id.rawValue, status: "killed", reason: reason)
        owned.withLock { _ = $0.remove(id) }
        mailboxes.withLock { $0[id] = nil }
        let deadline = ContinuousClock.now + waitForHost
        while ContinuousClock.now < deadline {
            if try await client.broker.queueInfo(id.queue) == nil { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = try? await client.broker.deleteQueue(id.queue)
    }

    /// The registry record of the actor behind `actor`, or `nil` once it is gone from Redis.
    ///
    /// - Throws: Redis's errors.
    public func record<Act: DistributedActor>(of actor: Act) async throws -> ActorRecord?
    where Act.ID == ConveyorActorID {
        try await store.record(actor.id.rawValue)
    }

    /// Declares the durable mailbox of `id`: classic, single active consumer, bounded when the options say so.
    ///
    /// Classic rather than quorum: a quorum queue enforces `x-max-length` only after it was exceeded (one more
    /// call gets in), while a classic one refuses exactly the call beyond the bound and counts only the calls
    /// waiting, not those running; it is also cheaper per call. Durable queue and persistent messages keep calls
    /// across a broker restart either way.
    func declareMailbox(_ id: ConveyorActorID, options: ActorOptions) async throws {
        var queue = AMQPQueue(id.queue, durable: true)
        queue.queueType = .classic
        queue.singleActiveConsumer = true
        if let limit = options.maxPendingCalls {
            queue.maxLength = max(limit, 1)
            queue.overflow = .rejectPublish
        }
        _ = try await client.broker.declare(queue)
    }

    // MARK: DistributedActorSystem

    public func assignID<Act>(_ actorType: Act.Type) -> ConveyorActorID
    where Act: DistributedActor, Act.ID == ConveyorActorID {
        Self.assigningID.get() ?? ConveyorActorID(TaskID.make())
    }

    public func actorReady<Act>(_ actor: Act) where Act: DistributedActor, Act.ID == ConveyorActorID {
        hosted.withLock { $0[actor.id] = actor }
    }

    public func resignID(_ id: ConveyorActorID) {
        hosted.withLock { $0[id] = nil }
    }

    /// The instance hosted in this process, or `nil`: the runtime then makes a remote reference.
    public func resolve<Act>(id: ConveyorActorID, as actorType: Act.Type) throws -> Act?
    where Act: DistributedActor, Act.ID == ConveyorActorID {
        hosted.withLock { $0[id] } as? Act
    }

    public func makeInvocationEncoder() -> ConveyorInvocationEncoder {
        ConveyorInvocationEncoder()
    }

    public func remoteCall<Act, Err, Res>(
        on actor: Act, target: RemoteCallTarget, invocation: inout InvocationEncoder, throwing: Err.Type,
        returning: Res.Type
    ) async throws -> Res where Act: DistributedActor, Act.ID == ActorID, Err: Error, Res: Codable {
        let meta = try await call(
            actor.id, method: target.identifier, arguments: invocation.arguments, generics: invocation.generics)
        do {
            return try meta.result.decode(as: Res.self)
        } catch {
            throw ActorError.resultDecoding(actor: actor.id.rawValue, reason: String(describing: error))
        }
    }

    public func remoteCallVoid<Act, Err>(
        on actor: Act, target: RemoteCallTarget, invocation: inout InvocationEncoder, throwing: Err.Type
    ) async throws where Act: DistributedActor, Act.ID == ActorID, Err: Error {
        _ = try await call(
            actor.id, method: target.identifier, arguments: invocation.arguments, generics: invocation.generics)
    }

    // MARK: Hosting (used by ConveyorWorker's host)

    /// Runs `body` (a hosted actor's initialiser) so that the instance it makes gets the id `id`.
    package func withAssignedID<T: Sendable>(_ id: ConveyorActorID, _ body: () async throws -> T) async rethrows -> T {
        try await Self.assigningID.withValue(id) { try await body() }
    }

    /// Forgets the hosted instance `id` (its host stopped it).
    package func unhost(_ id: ConveyorActorID) {
        hosted.withLock { $0[id] = nil }
    }

    // MARK: Calls

    /// Publishes one call and waits for its outcome meta (SUCCESS), or throws the error it records.
    func call(
        _ id: ConveyorActorID, method: String, arguments: [JSONValue], generics: [String]
    ) async throws -> CeleryResultMeta {
        let callID = TaskID.make()
        // Registered before the publish: the answer cannot arrive before someone waits for it.
        try await client.ensureNotifications()
        let waiter = ResultWaiter(id: callID)
        client.waiters.add(waiter)
        defer { client.waiters.remove(waiter) }
        let outgoing = OutgoingCall(callID: callID, method: method, arguments: arguments, generics: generics)
        let timeout = callTimeout
        // The publish runs beside the wait, in a task of its own, and a refusal (a full or deleted mailbox, a lost
        // connection) resolves the waiter with its error. The call ends with the first of the two: an answer means
        // the broker took the message, so its confirm, which for a persistent message comes only once the host has
        // acknowledged it (after the answer), is not waited for; the task ends with the confirm.
        Task {
            do {
                try await self.send(outgoing, to: id)
            } catch {
                waiter.resolve(.failure(error))
            }
        }
        let meta = try await wait(for: waiter, actor: id, timeout: timeout)
        if meta.state == .success { return meta }
        let failure = meta.failure ?? TaskFailure(type: "UnknownError", message: "\(meta.result)")
        switch failure.type {
        case ActorFailureType.killed: throw ActorError.killed(actor: id.rawValue, reason: failure.message)
        case ActorFailureType.dead: throw ActorError.dead(actor: id.rawValue, reason: failure.message)
        default:
            throw ActorError.callFailed(
                actor: id.rawValue, method: ActorMethodName.base(of: method), type: failure.type,
                message: failure.message)
        }
    }

    /// Publishes `call` to the mailbox of `id`, alone or in one message with other calls in flight to it (see
    /// ``MailboxBatcher``), and returns once the broker confirmed it.
    func send(_ call: OutgoingCall, to id: ConveyorActorID) async throws {
        guard let batcher = try await batcher(for: id) else {
            try await publish(
                to: id, kind: "actor-call", callID: call.callID, method: call.method, body: call.singleBody,
                limit: nil)
            return
        }
        try await batcher.send(call) { calls in try await self.publish(calls, to: id) }
    }

    /// One call as an `actor-call` message, several as one `actor-calls` message (docs/PROTOCOL.md §10).
    func publish(_ calls: [OutgoingCall], to id: ConveyorActorID) async throws {
        guard let first = calls.first else { return }
        if calls.count == 1 {
            try await publish(
                to: id, kind: "actor-call", callID: first.callID, method: first.method, body: first.singleBody,
                limit: nil)
            return
        }
        try await publish(
            to: id, kind: "actor-calls", callID: first.callID, method: nil,
            body: JSONValue.array(calls.map(\.batchElement)).jsonBytes(), limit: nil)
    }

    /// The batcher of the mailbox of `id`, or `nil` when it is bounded (or unknown: its record is gone, and the
    /// publish will say why). The first call to an actor this system did not spawn or look up reads its record.
    func batcher(for id: ConveyorActorID) async throws -> MailboxBatcher? {
        if let known = mailboxes.withLock({ $0[id] }) { return known }
        let bounded = try await store.record(id.rawValue).map { $0.options.maxPendingCalls != nil } ?? true
        return remember(id, bounded: bounded)
    }

    /// Records how calls reach the mailbox of `id`; the route already known wins.
    @discardableResult
    func remember(_ id: ConveyorActorID, bounded: Bool) -> MailboxBatcher? {
        mailboxes.withLock { mailboxes in
            if let known = mailboxes[id] { return known }
            let route = bounded ? nil : MailboxBatcher()
            mailboxes[id] = route
            return route
        }
    }

    /// Publishes a message to the mailbox of `id` (persistent, mandatory, confirmed).
    func publish(
        to id: ConveyorActorID, kind: String, callID: String, method: String?, body: [UInt8], limit: Int?
    ) async throws {
        var headers: AMQPTable = [
            ActorHeader.kind: .string(kind), ActorHeader.actorID: .string(id.rawValue),
        ]
        if let method { headers[ActorHeader.method] = .string(method) }
        let properties = AMQPProperties(
            contentType: "application/json", contentEncoding: "utf-8", headers: headers, deliveryMode: .persistent,
            correlationId: callID, replyTo: client.clientID)
        do {
            try await client.broker.publish(
                AMQPMessage(body: body, properties: properties), exchange: "", routingKey: id.queue, mandatory: true)
        } catch AMQPError.nacked {
            let bound = try? await store.record(id.rawValue)?.options.maxPendingCalls
            throw ActorError.mailboxFull(actor: id.rawValue, limit: limit ?? bound ?? 0)
        } catch AMQPError.returned {
            throw try await endedError(id)
        }
    }

    /// Why the mailbox of `id` is gone.
    func endedError(_ id: ConveyorActorID) async throws -> ActorError {
        guard let record = try await store.record(id.rawValue) else {
            return .dead(actor: id.rawValue, reason: "no such actor (its record expired or never existed)")
        }
        switch record.status {
        case "killed": return .killed(actor: id.rawValue, reason: record.reason)
        case "dead": return .dead(actor: id.rawValue, reason: record.reason)
        default: return .dead(actor: id.rawValue, reason: "its mailbox queue \(id.queue) is gone")
        }
    }

    func wait(
        for waiter: ResultWaiter, actor id: ConveyorActorID, timeout: Duration?
    ) async throws
        -> CeleryResultMeta
    {
        guard let timeout else { return try await waiter.value }
        return try await withThrowingTaskGroup(of: CeleryResultMeta?.self) { group in
            group.addTask { try await waiter.value }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let meta = first else {
                throw ActorError.timeout(actor: id.rawValue, after: timeout)
            }
            return meta
        }
    }
}

/// The `conveyor_*` headers of actor messages (docs/PROTOCOL.md, "Actors").
package enum ActorHeader {
    /// `actor-create`, `actor-call` or `actor-calls` (several calls in one message).
    package static let kind = "conveyor_kind"
    package static let actorID = "conveyor_actor_id"
    /// The call's target: the mangled name of the distributed method (`RemoteCallTarget.identifier`).
    package static let method = "conveyor_method"
}

/// The `exc_type`s a host records for calls it refuses because the actor ended.
package enum ActorFailureType {
    package static let killed = "ActorKilled"
    package static let dead = "ActorDead"
}

/// Readable method names from distributed targets' mangled names.
package enum ActorMethodName {
    /// `nap` for the target of `distributed func nap(milliseconds:)`: what concurrency groups name.
    package static func base(of identifier: String) -> String {
        let cache = Self.cache.withLock { $0[identifier] }
        if let cache { return cache }
        var name = identifier
        if let full = demangle(identifier) {
            // "distributed thunk Module.Type.method(label: Type) async throws -> Result"
            var text = Substring(full)
            if let space = text.range(of: " thunk ") { text = text[space.upperBound...] }
            if let paren = text.firstIndex(of: "(") { text = text[..<paren] }
            if let dot = text.lastIndex(of: ".") { text = text[text.index(after: dot)...] }
            name = String(text)
        }
        Self.cache.withLock { $0[identifier] = name }
        return name
    }

    private static let cache = LockedValue<[String: String]>([:])

    private static func demangle(_ mangled: String) -> String? {
        mangled.withCString { pointer in
            guard let output = swiftDemangle(pointer, strlen(pointer), nil, nil, 0) else { return nil }
            defer { free(output) }
            return String(cString: output)
        }
    }
}

@_silgen_name("swift_demangle")
private func swiftDemangle(
    _ mangledName: UnsafePointer<CChar>?, _ mangledNameLength: Int, _ outputBuffer: UnsafeMutablePointer<CChar>?,
    _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?
