import ConveyorRedis

extension RedisKeys {
    /// `P periodic:leader`: the periodic scheduler's leader lease (hash: `owner`, `token`, `acquired_ms`,
    /// `renewed_ms`, `until_ms`; expires with the lease).
    public var periodicLeader: String { prefix + "periodic:leader" }

    /// `P periodic:fence`: the counter the leader lease's fencing tokens come from (no TTL).
    public var periodicFence: String { prefix + "periodic:fence" }

    /// `P periodic:schedules`: the names of the schedules with a record (sorted set, score = ms the record expires).
    public var periodicSchedules: String { prefix + "periodic:schedules" }

    /// `P periodic:schedule:<name>`: one schedule's record (hash): last tick, pending tick, next run, counts.
    public func periodicSchedule(_ name: String) -> String { prefix + "periodic:schedule:" + name }
}

/// Who holds the periodic scheduler's leader lease, as ``TaskStore/periodicLead(worker:lease:token:)`` found it.
public enum PeriodicLeadership: Sendable, Hashable {
    /// `worker` holds the lease under `token`; `acquired` when it was not its lease before this call.
    case leader(token: Int64, acquired: Bool)
    /// Another worker holds it for `remainingMs` more.
    case follower(owner: String, remainingMs: Int64)
}

/// The outcome of ``TaskStore/periodicClaimTick(name:tickMs:id:nextMs:worker:token:recordTTL:now:)``.
public enum PeriodicTickClaim: Sendable, Hashable {
    /// The tick is this leader's to submit.
    case claimed
    /// This tick, or a later one, was claimed already (`lastTickMs`): do not submit.
    case done(lastTickMs: Int64)
    /// The caller's lease is gone: it is no longer the leader.
    case notLeader
}

/// A schedule's record as the leader left it (`P periodic:schedule:<name>`).
public struct PeriodicScheduleRecord: Sendable, Hashable {
    public var name: String
    public var task: String?
    /// The schedule as text (`every 1s`, `*/5 * * * *`).
    public var schedule: String?
    public var queue: String?
    /// The last tick claimed (its scheduled time, Unix ms).
    public var lastTickMs: Int64?
    /// The task id of the last tick claimed.
    public var lastID: String?
    /// When the last tick's message was confirmed by the broker, and its id.
    public var lastRunMs: Int64?
    public var lastRunID: String?
    /// A tick claimed but not yet confirmed published (its leader died in between, or the publish failed).
    public var pendingTickMs: Int64?
    /// The next tick the leader plans.
    public var nextMs: Int64?
    /// Ticks submitted (confirmed) so far.
    public var submitted: Int64
    /// The worker that claimed the last tick.
    public var claimedBy: String?

    public init(name: String) {
        self.name = name
        self.submitted = 0
    }
}

/// The periodic scheduler's leader lease (`P periodic:leader`).
public struct PeriodicLeaderRecord: Sendable, Hashable {
    public var owner: String
    public var token: Int64
    public var acquiredMs: Int64?
    /// When the lease runs out unless renewed (Redis's clock).
    public var untilMs: Int64?
}

extension TaskStore {
    /// Takes the periodic scheduler's leader lease for `worker` if nobody holds it, or renews it if `worker` holds
    /// it under `token`; one script (`SET NX PX` and renewal with a fencing token).
    ///
    /// - Parameter token: the token of the lease `worker` believes it holds, `nil` if none.
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func periodicLead(
        worker: String, lease: Duration, token: Int64?, now: Int64? = nil
    ) async throws -> PeriodicLeadership {
        let reply = try await run(
            TaskScripts.periodicLead, keys: [keys.periodicLeader, keys.periodicFence],
            arguments: [keys.prefix, worker, lease.wholeMilliseconds, token.map { String($0) } ?? "", now ?? 0])
        let (tag, fields) = try ScriptReply.tagged(reply, script: "periodicLead")
        switch tag {
        case ScriptReply.acquired, ScriptReply.renewed:
            return .leader(
                token: try ScriptReply.int(fields, 1, script: "periodicLead"), acquired: tag == ScriptReply.acquired)
        case ScriptReply.follower:
            return .follower(
                owner: try ScriptReply.string(fields, 1, script: "periodicLead"),
                remainingMs: try ScriptReply.int(fields, 2, script: "periodicLead"))
        default:
            throw ScriptReply.unexpected(fields, script: "periodicLead")
        }
    }

    /// Gives the leader lease up (a leader shutting down), so another worker takes over at its next try rather
    /// than after the lease runs out. Returns `false` when `worker` did not hold it under `token`.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    @discardableResult
    public func periodicResign(worker: String, token: Int64) async throws -> Bool {
        let reply = try await run(
            TaskScripts.periodicResign, keys: [keys.periodicLeader], arguments: [keys.prefix, worker, String(token)])
        return try ScriptReply.tagged(reply, script: "periodicResign").tag == ScriptReply.resigned
    }

    /// Records a schedule's description and next run (fenced by the leader's token) and returns its last and
    /// pending ticks, or `nil` when `worker` is no longer the leader.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func periodicPlan(
        name: String, task: String, schedule: String, queue: String, nextMs: Int64, worker: String, token: Int64,
        recordTTL: Duration, now: Int64? = nil
    ) async throws -> (lastTickMs: Int64?, pendingTickMs: Int64?)? {
        let reply = try await run(
            TaskScripts.periodicPlan,
            keys: [keys.periodicLeader, keys.periodicSchedule(name), keys.periodicSchedules],
            arguments: [
                keys.prefix, worker, String(token), name, task, schedule, queue, nextMs, recordTTL.wholeMilliseconds,
                now ?? 0,
            ])
        let (tag, fields) = try ScriptReply.tagged(reply, script: "periodicPlan")
        if tag == ScriptReply.notLeader { return nil }
        guard tag == ScriptReply.planned, fields.count == 3 else {
            throw ScriptReply.unexpected(fields, script: "periodicPlan")
        }
        return (fields[1].int.map(Int64.init), fields[2].int.map(Int64.init))
    }

    /// Claims tick `tickMs` of schedule `name` for the leader: compare-and-set of the schedule's last tick, fenced by
    /// the leader's token. A claimed tick is pending until ``periodicSubmitted(name:tickMs:now:)``.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func periodicClaimTick(
        name: String, tickMs: Int64, id: String, nextMs: Int64, worker: String, token: Int64, recordTTL: Duration,
        now: Int64? = nil
    ) async throws -> PeriodicTickClaim {
        let reply = try await run(
            TaskScripts.periodicClaimTick,
            keys: [keys.periodicLeader, keys.periodicSchedule(name), keys.periodicSchedules],
            arguments: [
                keys.prefix, worker, String(token), name, tickMs, id, nextMs, recordTTL.wholeMilliseconds, now ?? 0,
            ])
        let (tag, fields) = try ScriptReply.tagged(reply, script: "periodicClaimTick")
        switch tag {
        case ScriptReply.claimed: return .claimed
        case ScriptReply.done: return .done(lastTickMs: try ScriptReply.int(fields, 1, script: "periodicClaimTick"))
        case ScriptReply.notLeader: return .notLeader
        default: throw ScriptReply.unexpected(fields, script: "periodicClaimTick")
        }
    }

    /// Records that the message of pending tick `tickMs` was confirmed by the broker. Returns `false` when that
    /// tick is no longer pending (recorded already).
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    @discardableResult
    public func periodicSubmitted(name: String, tickMs: Int64, now: Int64? = nil) async throws -> Bool {
        let reply = try await run(
            TaskScripts.periodicSubmitted, keys: [keys.periodicSchedule(name)],
            arguments: [keys.prefix, tickMs, now ?? 0])
        return try ScriptReply.tagged(reply, script: "periodicSubmitted").tag == ScriptReply.recorded
    }

    /// The periodic scheduler's leader, or `nil` when no worker holds the lease.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func periodicLeader() async throws -> PeriodicLeaderRecord? {
        let fields = try await redis.hgetall(keys.periodicLeader)
        func text(_ key: String) -> String? { fields[key].map { String(decoding: $0, as: UTF8.self) } }
        guard let owner = text("owner"), let token = text("token").flatMap({ Int64($0) }) else { return nil }
        return PeriodicLeaderRecord(
            owner: owner, token: token, acquiredMs: text("acquired_ms").flatMap { Int64($0) },
            untilMs: text("until_ms").flatMap { Int64($0) })
    }

    /// Every schedule with a record, by name.
    ///
    /// - Throws: the ``RedisError`` of the calls.
    public func periodicSchedules() async throws -> [PeriodicScheduleRecord] {
        let names = try await redis.send(RedisCommand("ZRANGE", keys.periodicSchedules, 0, -1), timeout: nil)
        let list = (names.array ?? []).compactMap(\.string).sorted()
        guard !list.isEmpty else { return [] }
        let replies = try await redis.send(
            batch: list.map { RedisCommand("HGETALL", keys.periodicSchedule($0)) }, timeout: nil)
        var records: [PeriodicScheduleRecord] = []
        for (name, result) in zip(list, replies) {
            guard case .success(.array(let fields)) = result, !fields.isEmpty else { continue }
            records.append(Self.periodicScheduleRecord(name: name, fields: fields))
        }
        return records
    }

    /// One schedule's record, or `nil` when it has none.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func periodicSchedule(_ name: String) async throws -> PeriodicScheduleRecord? {
        let reply = try await redis.send(RedisCommand("HGETALL", keys.periodicSchedule(name)), timeout: nil)
        guard case .array(let fields) = reply, !fields.isEmpty else { return nil }
        return Self.periodicScheduleRecord(name: name, fields: fields)
    }

    static func periodicScheduleRecord(name: String, fields: [RESPValue]) -> PeriodicScheduleRecord {
        var record = PeriodicScheduleRecord(name: name)
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            guard let field = fields[index].string else { continue }
            let value = fields[index + 1]
            let number = value.int.map(Int64.init)
            switch field {
            case "task": record.task = value.string
            case "schedule": record.schedule = value.string
            case "queue": record.queue = value.string
            case "last_tick_ms": record.lastTickMs = number
            case "last_id": record.lastID = value.string
            case "last_run_ms": record.lastRunMs = number
            case "last_run_id": record.lastRunID = value.string
            case "pending_tick_ms": record.pendingTickMs = number
            case "next_ms": record.nextMs = number
            case "submitted": record.submitted = number ?? 0
            case "claimed_by": record.claimedBy = value.string
            default: break
            }
        }
        return record
    }
}

extension ScriptReply {
    static let acquired = Array("acquired".utf8)
    static let renewed = Array("renewed".utf8)
    static let follower = Array("follower".utf8)
    static let resigned = Array("resigned".utf8)
    static let notLeader = Array("notleader".utf8)
    static let planned = Array("planned".utf8)
    static let claimed = Array("claimed".utf8)
    static let done = Array("done".utf8)
}
