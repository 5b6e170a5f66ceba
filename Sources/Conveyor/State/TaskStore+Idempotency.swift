import ConveyorRedis

/// What ``TaskStore/reserveIdempotencyKey(_:candidate:pending:ttl:now:)`` found.
public enum IdempotencyReservation: Sendable, Hashable {
    /// The caller publishes task `id` now, then confirms the key. `id` is the candidate, or the id of a
    /// reservation whose producer did not confirm within its pending time (it is taken over, id and all).
    case reserved(id: String)
    /// Task `id` was published under this key: use it, publish nothing.
    case confirmed(id: String)
    /// Another producer is publishing task `id`; ask again (it confirms, or its reservation lapses at `untilMs`
    /// and the next caller takes it over).
    case pending(id: String, untilMs: Int64)
}

extension TaskStore {
    /// Reserves idempotency key `key` for a new task `candidate`, or says which task the key already names.
    ///
    /// A new reservation is pending for `pending`; the key lives `ttl`.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func reserveIdempotencyKey(
        _ key: String, candidate: String, pending: Duration, ttl: Duration, now: Int64? = nil
    ) async throws -> IdempotencyReservation {
        let reply = try await run(
            TaskScripts.reserveIdempotency, keys: [keys.idempotency(key)],
            arguments: [keys.prefix, candidate, now ?? 0, pending.wholeMilliseconds, ttl.wholeMilliseconds])
        return try Self.reservation(reply)
    }

    /// Decodes a `reserveIdempotency` reply.
    static func reservation(_ reply: RESPValue) throws -> IdempotencyReservation {
        let (tag, fields) = try ScriptReply.tagged(reply, script: "reserveIdempotency")
        guard fields.count >= 2, let id = fields[1].string else {
            throw TaskStoreError.unexpectedReply(script: "reserveIdempotency", reply: reply.description)
        }
        switch String(decoding: tag, as: UTF8.self) {
        case "reserved": return .reserved(id: id)
        case "confirmed": return .confirmed(id: id)
        case "pending":
            return .pending(id: id, untilMs: try ScriptReply.int(fields, 2, script: "reserveIdempotency"))
        default: throw TaskStoreError.unexpectedReply(script: "reserveIdempotency", reply: reply.description)
        }
    }

    /// Confirms that task `id` was published under `key`: the key names it for `ttl` from now.
    ///
    /// A plain `SET`, not a check-and-set: the key can only name another id if this producer's reservation was
    /// released (only this producer releases it, and only when it published nothing) or the key expired, and a
    /// takeover keeps the id.
    ///
    /// - Returns: `id`.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func confirmIdempotencyKey(_ key: String, id: String, ttl: Duration) async throws -> String {
        _ = try await redis.send(confirmation(key, id: id, ttl: ttl), timeout: nil)
        return id
    }

    /// The `SET` that confirms `key` for task `id` (docs/PROTOCOL.md §7).
    func confirmation(_ key: String, id: String, ttl: Duration) -> RedisCommand {
        RedisCommand("SET", keys.idempotency(key), "confirmed:" + id, "PX", ttl.wholeMilliseconds)
    }

    /// Drops a pending reservation of `key` for `id` (its submit failed before anything was published).
    ///
    /// - Returns: whether it was dropped.
    /// - Throws: the ``RedisError`` of the call.
    @discardableResult
    public func releaseIdempotencyKey(_ key: String, id: String) async throws -> Bool {
        let reply = try await run(
            TaskScripts.releaseIdempotency, keys: [keys.idempotency(key)], arguments: [keys.prefix, id])
        return (reply.int ?? 0) == 1
    }

    /// The task id idempotency key `key` names, confirmed or pending; `nil` when the key is free.
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func idempotencyTaskID(_ key: String) async throws -> String? {
        guard let value = try await redis.send(RedisCommand("GET", keys.idempotency(key)), timeout: nil).string
        else { return nil }
        return Self.idempotencyRecord(value)?.id
    }

    /// Reads an idempotency key's value: `confirmed:<id>` or `pending:<until ms>:<id>`.
    static func idempotencyRecord(_ value: String) -> (id: String, pendingUntilMs: Int64?)? {
        if value.hasPrefix("confirmed:") {
            let id = value.dropFirst("confirmed:".count)
            return id.isEmpty ? nil : (String(id), nil)
        }
        guard value.hasPrefix("pending:") else { return nil }
        let rest = value.dropFirst("pending:".count)
        guard let colon = rest.firstIndex(of: ":"), let until = Int64(rest[..<colon]) else { return nil }
        let id = rest[rest.index(after: colon)...]
        return id.isEmpty ? nil : (String(id), until)
    }
}
