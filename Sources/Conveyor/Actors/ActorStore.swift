import ConveyorRedis
import Foundation

/// One actor's registry record (`P actor:<id>`).
public struct ActorRecord: Sendable, Hashable {
    public var id: String
    public var namespace: String
    /// Empty for an anonymous actor.
    public var name: String
    /// The registered type name (``ConveyorActor/actorTypeName``).
    public var type: String
    /// `pending` (no host yet, or its host left gracefully), `alive`, `killed` or `dead`.
    public var status: String
    /// The host (worker id) that last took the actor on; empty before the first.
    public var host: String
    public var restarts: Int
    public var options: ActorOptions
    /// The initialiser's arguments, JSON.
    public var arguments: JSONValue
    /// Calls recorded so far.
    public var calls: Int
    /// Why the actor was killed or died.
    public var reason: String
    public var createdMs: Int64

    /// `true` while the actor takes calls (neither killed nor dead).
    public var isLive: Bool { status != "killed" && status != "dead" }
}

/// The actor registry in Redis: one Lua script per change (``ActorScripts``), plain reads otherwise.
///
/// - Important: a value that shares its connection; copy it freely, use it from any task.
public struct ActorStore: Sendable {
    public let redis: any RedisCommandSender
    public let keys: RedisKeys
    /// How long a call's result is kept (seconds); a redelivered call whose result exists is not run again.
    public var resultTTLSeconds: Int = 3_600
    /// How long the record of a killed or dead actor is kept (seconds), so its callers learn why.
    public var endedTTLSeconds: Int = 86_400

    public init(redis: any RedisCommandSender, keys: RedisKeys) {
        self.redis = redis
        self.keys = keys
    }

    /// What ``spawn(id:type:options:arguments:owner:)`` found.
    public enum SpawnOutcome: Sendable, Hashable {
        case created
        case existing(id: String, type: String)
        case taken(id: String, type: String)
    }

    /// Registers a new actor, or finds the live one with its name (atomic: one script).
    ///
    /// - Throws: ``RedisError``, ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func spawn(
        id: String, type: String, options: ActorOptions, arguments: JSONValue, owner: String
    ) async throws -> SpawnOutcome {
        let name = options.name ?? ""
        let optionsJSON = try JSONValue(encoding: options).jsonBytes()
        let reply = try await redis.evalScript(
            ActorScripts.spawn,
            keys: [keys.actor(id), keys.actorName(name, namespace: options.namespace), keys.actors],
            arguments: [
                keys.prefix, id, options.namespace, name, type, options.getIfExists ? "1" : "0", options.maxRestarts,
                options.lifetime.rawValue, owner, optionsJSON, arguments.jsonBytes(),
                Int64(Date().timeIntervalSince1970 * 1000),
            ])
        let fields = reply.array?.compactMap(\.string) ?? []
        switch fields.first {
        case "created": return .created
        case "existing" where fields.count >= 3: return .existing(id: fields[1], type: fields[2])
        case "taken" where fields.count >= 3: return .taken(id: fields[1], type: fields[2])
        default: throw TaskStoreError.unexpectedReply(script: "actor-spawn", reply: reply.description)
        }
    }

    /// What a host learns when it takes an actor on.
    public enum HostOutcome: Sendable, Hashable {
        /// Host it: the restarts so far, the initialiser's arguments, the last snapshot (if any).
        case host(restarts: Int, arguments: JSONValue, snapshot: JSONValue?)
        case killed(reason: String)
        case dead(reason: String)
        case missing
    }

    /// Takes actor `id` on for `host` (a different previous host counts as a restart).
    ///
    /// - Throws: ``RedisError``, ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func host(_ id: String, host: String) async throws -> HostOutcome {
        let reply = try await redis.evalScript(
            ActorScripts.host, keys: [keys.actor(id), keys.actorSnapshot(id)],
            arguments: [keys.prefix, id, host, Int64(Date().timeIntervalSince1970 * 1000), endedTTLSeconds])
        let fields = reply.array ?? []
        switch fields.first?.string {
        case "host" where fields.count >= 4:
            let arguments = (fields[2].bytes).flatMap { try? JSONValue(json: $0) } ?? .null
            let snapshotBytes = fields[3].bytes ?? []
            let snapshot = snapshotBytes.isEmpty ? nil : try? JSONValue(json: snapshotBytes)
            return .host(restarts: Int(fields[1].string ?? "") ?? 0, arguments: arguments, snapshot: snapshot)
        case "killed": return .killed(reason: fields.dropFirst().first?.string ?? "killed")
        case "dead": return .dead(reason: fields.dropFirst().first?.string ?? "dead")
        case "missing": return .missing
        default: throw TaskStoreError.unexpectedReply(script: "actor-host", reply: reply.description)
        }
    }

    /// One call's outcome, as ``record(actor:host:outcomes:snapshot:)`` writes it.
    public struct CallOutcome: Sendable {
        /// The call's id (its result key and the id its caller waits for).
        public var call: String
        /// The Celery result meta (JSON).
        public var meta: [UInt8]
        /// The client to notify (`""`: none).
        public var replyTo: String

        public init(call: String, meta: [UInt8], replyTo: String) {
            self.call = call
            self.meta = meta
            self.replyTo = replyTo
        }
    }

    /// Records the outcomes of calls to actor `id` (and `snapshot`, the actor's state after the last of them), if
    /// `host` still hosts it, and notifies each caller: one script for all of them.
    ///
    /// - Returns: `false` if another host took the actor over (nothing was written).
    /// - Throws: ``RedisError``.
    public func record(
        actor id: String, host: String, outcomes: [CallOutcome], snapshot: [UInt8]?
    ) async throws -> Bool {
        var keyList: [any RedisArgument] = [keys.actor(id), keys.actorSnapshot(id)]
        keyList.reserveCapacity(2 + outcomes.count)
        var arguments: [any RedisArgument] = [
            keys.prefix, host, resultTTLSeconds, snapshot == nil ? "0" : "1", snapshot ?? [],
        ]
        arguments.reserveCapacity(5 + 3 * outcomes.count)
        for outcome in outcomes {
            keyList.append(keys.result(outcome.call))
            arguments.append(outcome.call)
            arguments.append(outcome.meta)
            arguments.append(outcome.replyTo)
        }
        let reply = try await redis.evalScript(ActorScripts.record, keys: keyList, arguments: arguments)
        return reply.string == "recorded"
    }

    /// Records the refusal (or any outcome) of call `call` without fencing: for calls to an actor that ended.
    ///
    /// - Throws: ``RedisError``.
    public func refuse(call: String, meta: [UInt8], replyTo: String) async throws {
        _ = try await redis.evalScript(
            ActorScripts.refuse, keys: [keys.result(call)],
            arguments: [keys.prefix, call, meta, resultTTLSeconds, replyTo])
    }

    /// Whether call `call` has a recorded outcome (a redelivered call that has one is not run again).
    ///
    /// - Throws: ``RedisError``.
    public func hasOutcome(call: String) async throws -> Bool {
        try await redis.send(RedisCommand("EXISTS", keys.result(call)), timeout: nil).int == 1
    }

    /// Ends actor `id` for good with `status` `killed` or `dead`.
    ///
    /// - Returns: `false` if it had ended before or does not exist.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func end(_ id: String, status: String, reason: String) async throws -> Bool {
        let reply = try await redis.evalScript(
            ActorScripts.end, keys: [keys.actor(id)],
            arguments: [keys.prefix, id, status, reason, endedTTLSeconds])
        return reply.string == "ended"
    }

    /// A host leaving gracefully gives the actor up, so the next host's takeover is not a restart.
    ///
    /// - Throws: ``RedisError``.
    public func release(_ id: String, host: String) async throws {
        _ = try await redis.evalScript(ActorScripts.release, keys: [keys.actor(id)], arguments: [keys.prefix, host])
    }

    /// The record of actor `id`, or `nil` if Redis has none.
    ///
    /// - Throws: ``RedisError``.
    public func record(_ id: String) async throws -> ActorRecord? {
        let reply = try await redis.send(RedisCommand("HGETALL", keys.actor(id)), timeout: nil)
        guard let values = reply.array, !values.isEmpty else { return nil }
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < values.count {
            if let key = values[index].string { fields[key] = values[index + 1].string ?? "" }
            index += 2
        }
        let options =
            fields["options"].flatMap { try? JSONValue(json: Array($0.utf8)).decode(as: ActorOptions.self) }
            ?? ActorOptions()
        return ActorRecord(
            id: id, namespace: fields["namespace"] ?? "", name: fields["name"] ?? "", type: fields["type"] ?? "",
            status: fields["status"] ?? "", host: fields["host"] ?? "", restarts: Int(fields["restarts"] ?? "") ?? 0,
            options: options,
            arguments: fields["args"].flatMap { try? JSONValue(json: Array($0.utf8)) } ?? .null,
            calls: Int(fields["calls"] ?? "") ?? 0, reason: fields["reason"] ?? "",
            createdMs: Int64(fields["created_ms"] ?? "") ?? 0)
    }

    /// The id of the live actor named `name` in `namespace`, or `nil`.
    ///
    /// - Throws: ``RedisError``.
    public func lookup(name: String, namespace: String) async throws -> String? {
        try await redis.send(RedisCommand("GET", keys.actorName(name, namespace: namespace)), timeout: nil).string
    }

    /// The ids of every live actor.
    ///
    /// - Throws: ``RedisError``.
    public func liveIDs() async throws -> [String] {
        (try await redis.send(RedisCommand("SMEMBERS", keys.actors), timeout: nil).array ?? []).compactMap(\.string)
    }

    /// The records of every live actor, sorted by namespace and name.
    ///
    /// - Throws: ``RedisError``.
    public func liveRecords() async throws -> [ActorRecord] {
        var records: [ActorRecord] = []
        for id in try await liveIDs() {
            if let record = try await record(id) { records.append(record) }
        }
        return records.sorted { ($0.namespace, $0.name, $0.id) < ($1.namespace, $1.name, $1.id) }
    }
}
