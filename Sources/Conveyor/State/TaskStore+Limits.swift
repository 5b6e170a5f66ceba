import ConveyorRedis
import Foundation

/// A task's fleet-wide limits as a claim applies them (docs/PROTOCOL.md, "Limits").
public struct ClaimLimits: Sendable, Hashable {
    /// The rate limit, if any.
    public var rate: RateLimit?
    /// The key a per-key rate limit counts under; `nil` counts under the task name alone.
    public var rateKey: String?
    /// The concurrency cap: at most this many runs of the pool at once across the fleet; `nil` for none.
    public var maxRunning: Int?
    /// The pool the cap counts in; the task name when `nil`.
    public var pool: String?

    /// How far the runs of a rate limit may catch up (ms) when parked tasks come back from the delay set late and
    /// together, beyond the rate's own burst: the promoter's batches and the broker make returns jitter, and a
    /// loaded machine stalls them. Late returns beyond it take new slots instead, so no window of time sees more
    /// than the rate allows plus this much. ``defaultCatchUpMs`` unless set.
    public var catchUpMs: Int64

    /// One second: a stall of up to a second is made up for, at the price of up to a second's worth of runs early.
    public static let defaultCatchUpMs: Int64 = 1_000

    public init(
        rate: RateLimit? = nil, rateKey: String? = nil, maxRunning: Int? = nil, pool: String? = nil,
        catchUpMs: Int64 = ClaimLimits.defaultCatchUpMs
    ) {
        self.rate = rate
        self.rateKey = rateKey
        self.maxRunning = maxRunning
        self.pool = pool
        self.catchUpMs = max(0, catchUpMs)
    }

    /// Whether there is anything to enforce.
    public var isLimiting: Bool { rate != nil || (maxRunning ?? 0) > 0 }

    /// The pool a task named `name` counts in.
    public func poolName(task name: String) -> String { pool ?? name }

    /// The claim script's extra KEYS (rate, cap, cap wait) and ARGV (interval, tolerance, max running, catch-up).
    func append(
        to keyList: inout [any RedisArgument], _ arguments: inout [any RedisArgument], keys: RedisKeys, name: String
    ) {
        let pool = poolName(task: name)
        keyList.append(keys.rate(task: name, key: rateKey))
        keyList.append(keys.cap(pool: pool))
        keyList.append(keys.capWaiting(pool: pool))
        if let rate {
            arguments.append(rate.emissionIntervalMs)
            arguments.append(rate.toleranceMs)
        } else {
            arguments.append(0)
            arguments.append(0)
        }
        arguments.append(max(0, maxRunning ?? 0))
        arguments.append(catchUpMs)
    }
}

extension RedisKeys {
    /// `P rate:<task>` (or `P rate:<task>|<key>` for a per-key limit): a hash of two GCRA theoretical arrival times,
    /// Unix ms with a fraction, as text: `tat` for the schedule of slots, `run` for the runs; it expires a second
    /// after both are reached.
    public func rate(task: String, key: String? = nil) -> String {
        guard let key else { return prefix + "rate:" + task }
        return prefix + "rate:" + task + "|" + key
    }

    /// `P cap:<pool>`: the runs holding a slot of the pool (sorted set, member = task id, score = ms the slot lapses
    /// unless renewed).
    public func cap(pool: String) -> String { prefix + "cap:" + pool }

    /// `P capwait:<pool>`: task ids parked because the pool was full (sorted set, score = ms first parked).
    public func capWaiting(pool: String) -> String { prefix + "capwait:" + pool }

    /// `P limits`: task name → the limits workers enforce for it (JSON), written when a worker starts.
    public var limits: String { prefix + "limits" }
}

/// The limits a worker enforces for one task, as recorded in `P limits` when it starts.
public struct TaskLimitsRecord: Sendable, Hashable {
    public var task: String
    /// `"20/s"`.
    public var rate: String?
    public var burst: Int?
    /// Where a per-key limit's key comes from, in words (`header`, `argument:customer`); `nil` for one limit per
    /// task name.
    public var rateKey: String?
    public var maxRunning: Int?
    /// The pool the cap counts in (the task name unless configured).
    public var pool: String?
    /// The worker that recorded it last, and when.
    public var worker: String
    public var updatedMs: Int64

    public init(
        task: String, rate: String? = nil, burst: Int? = nil, rateKey: String? = nil, maxRunning: Int? = nil,
        pool: String? = nil, worker: String, updatedMs: Int64
    ) {
        self.task = task
        self.rate = rate
        self.burst = burst
        self.rateKey = rateKey
        self.maxRunning = maxRunning
        self.pool = pool
        self.worker = worker
        self.updatedMs = updatedMs
    }

    /// The stored JSON object.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "task": .string(task), "worker": .string(worker), "updated_ms": .int(updatedMs),
        ]
        object["rate"] = rate.map(JSONValue.string)
        object["burst"] = burst.map { .int(Int64($0)) }
        object["rate_key"] = rateKey.map(JSONValue.string)
        object["max_running"] = maxRunning.map { .int(Int64($0)) }
        object["pool"] = pool.map(JSONValue.string)
        return .object(object)
    }

    /// Reads a stored record; `nil` when it is not one.
    public init?(json bytes: [UInt8]) {
        guard case .object(let fields)? = try? JSONValue(json: bytes), let task = fields["task"]?.stringValue else {
            return nil
        }
        self.init(
            task: task, rate: fields["rate"]?.stringValue, burst: fields["burst"]?.intValue.map { Int($0) },
            rateKey: fields["rate_key"]?.stringValue, maxRunning: fields["max_running"]?.intValue.map { Int($0) },
            pool: fields["pool"]?.stringValue, worker: fields["worker"]?.stringValue ?? "",
            updatedMs: fields["updated_ms"]?.intValue ?? 0)
    }
}

/// One task's limits and where they stand now.
public struct TaskLimitsStatus: Sendable, Hashable {
    public var record: TaskLimitsRecord
    /// Redis's clock when read (Unix ms).
    public var nowMs: Int64
    /// When the next run of the task-wide rate limit may start (Unix ms; `<= nowMs`: at once). Per-key limits keep
    /// one time per key; this is the task-wide one, for messages without a key.
    public var nextAllowedMs: Int64?
    /// The tasks holding a slot of the pool (lapsed ones left out).
    public var holders: [SlotHolder]
    /// How many tasks wait for a slot of the pool.
    public var waiting: Int

    /// A run holding a concurrency slot: its task id, and when the slot lapses unless renewed (Unix ms).
    public struct SlotHolder: Sendable, Hashable {
        public var id: String
        public var untilMs: Int64
    }
}

extension TaskStore {
    /// Parks a message that may not run yet (``ClaimOutcome/throttled(untilMs:)`` or
    /// ``ClaimOutcome/capped(firstExpiryMs:)``) in the delay set until `dueMs`; the promoter publishes it then.
    /// With `cap` it also joins the pool's wait list, so that a released slot makes it due at once; if a slot
    /// freed since the claim, it is due at once.
    ///
    /// - Parameter cap: the pool and its max running, for a capped task.
    /// - Returns: the due time stored.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func park(
        _ id: String, dueMs: Int64, message: DelayedMessage, cap: (pool: String, maxRunning: Int)? = nil,
        now: Int64? = nil
    ) async throws -> Int64 {
        var keyList: [any RedisArgument] = [keys.delayed, keys.delayedMessages, keys.delayedInFlight]
        var arguments: [any RedisArgument] = [keys.prefix, id, dueMs, message.jsonBytes()]
        if let cap {
            keyList.append(keys.cap(pool: cap.pool))
            keyList.append(keys.capWaiting(pool: cap.pool))
            arguments.append(now ?? 0)
            arguments.append(cap.maxRunning)
        }
        let reply = try await run(TaskScripts.park, keys: keyList, arguments: arguments)
        return Int64(reply.int ?? Int(dueMs))
    }

    /// Frees the slot run `token` of task `id` holds in `pool` (unless another run of the task holds its lease now)
    /// and wakes one waiter per free slot.
    ///
    /// - Returns: how many waiters were made due.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func releaseSlot(
        _ id: String, token: Int64, pool: String, maxRunning: Int, now: Int64? = nil
    ) async throws -> Int {
        let reply = try await run(
            TaskScripts.capRelease,
            keys: [keys.cap(pool: pool), keys.capWaiting(pool: pool), keys.task(id), keys.delayed],
            arguments: [keys.prefix, id, token, maxRunning, now ?? 0])
        return reply.int ?? 0
    }

    /// Extends the slots held by running tasks (`(pool, task id)` pairs) to now + `lease`; heartbeats call it.
    ///
    /// - Returns: how many were still held and extended.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func renewSlots(
        _ slots: [(pool: String, id: String)], lease: Duration, now: Int64? = nil
    ) async throws
        -> Int
    {
        guard !slots.isEmpty else { return 0 }
        var arguments: [any RedisArgument] = [keys.prefix, now ?? 0, lease.wholeMilliseconds]
        arguments.reserveCapacity(3 + slots.count * 2)
        for slot in slots {
            arguments.append(slot.pool)
            arguments.append(slot.id)
        }
        return try await run(TaskScripts.capRenew, keys: [], arguments: arguments).int ?? 0
    }

    /// Records the limits a worker enforces in `P limits`, for ``limitStatuses()`` and `conveyor inspect limits`.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func publishLimits(_ records: [TaskLimitsRecord]) async throws {
        guard !records.isEmpty else { return }
        var arguments: [any RedisArgument] = [keys.limits]
        for record in records {
            arguments.append(record.task)
            arguments.append(record.json.jsonBytes())
        }
        _ = try await redis.send(RedisCommand("HSET", arguments: arguments), timeout: nil)
    }

    /// Every task's recorded limits with their state now: the next allowed time of its rate limit, the slots held
    /// in its pool and the tasks waiting for one. Sorted by task name.
    ///
    /// - Throws: the ``RedisError`` of the calls.
    public func limitStatuses() async throws -> [TaskLimitsStatus] {
        let all = try await redis.send(RedisCommand("HGETALL", keys.limits), timeout: nil).array ?? []
        var records: [TaskLimitsRecord] = []
        var index = 0
        while index + 1 < all.count {
            defer { index += 2 }
            if let bytes = all[index + 1].bytes, let record = TaskLimitsRecord(json: bytes) { records.append(record) }
        }
        records.sort { $0.task < $1.task }
        let time = try await redis.send(RedisCommand("TIME"), timeout: nil).array ?? []
        let seconds = time.first?.string.flatMap { Int64($0) } ?? 0
        let micros = time.dropFirst().first?.string.flatMap { Int64($0) } ?? 0
        let now = seconds * 1000 + micros / 1000
        var statuses: [TaskLimitsStatus] = []
        for record in records {
            var status = TaskLimitsStatus(record: record, nowMs: now, nextAllowedMs: nil, holders: [], waiting: 0)
            if let rate = record.rate.flatMap({ try? RateLimit($0, burst: record.burst ?? 1) }) {
                let tat = try await redis.send(RedisCommand("HGET", keys.rate(task: record.task), "tat"), timeout: nil)
                    .string.flatMap(Double.init)
                status.nextAllowedMs = Int64(
                    GCRA.schedule(
                        tat: tat, now: Double(now), interval: rate.emissionIntervalMs, tolerance: rate.toleranceMs
                    ).runAt.rounded(.up))
            }
            if (record.maxRunning ?? 0) > 0 {
                let pool = record.pool ?? record.task
                let holders =
                    try await redis.send(
                        RedisCommand("ZRANGEBYSCORE", keys.cap(pool: pool), "(\(now)", "+inf", "WITHSCORES"),
                        timeout: nil
                    ).array ?? []
                var pairs: [TaskLimitsStatus.SlotHolder] = []
                var at = 0
                while at + 1 < holders.count {
                    defer { at += 2 }
                    if let id = holders[at].string, let until = holders[at + 1].string.flatMap(Double.init) {
                        pairs.append(.init(id: id, untilMs: Int64(until)))
                    }
                }
                status.holders = pairs
                status.waiting =
                    try await redis.send(RedisCommand("ZCARD", keys.capWaiting(pool: pool)), timeout: nil).int ?? 0
            }
            statuses.append(status)
        }
        return statuses
    }
}
