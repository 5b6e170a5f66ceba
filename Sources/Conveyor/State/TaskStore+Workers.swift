import ConveyorRedis

extension TaskStore {
    /// Extends the leases of `ids` still held by `worker` to now + `lease` (and their records' TTL), and reports
    /// lost leases and revocations. One script, one round trip.
    ///
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func renewLeases(
        worker: String, ids: [String], lease: Duration, now: Int64? = nil
    ) async throws -> LeaseRenewal {
        guard !ids.isEmpty else { return LeaseRenewal(renewed: [], lost: [], revoked: []) }
        var arguments: [any RedisArgument] = [keys.prefix, worker, now ?? 0, lease.wholeMilliseconds, resultTTLSeconds]
        arguments.reserveCapacity(arguments.count + ids.count)
        for id in ids { arguments.append(id) }
        let reply = try await run(TaskScripts.renewLeases, keys: [], arguments: arguments)
        return try Self.leaseRenewal(reply, script: "renewLeases")
    }

    /// Records `worker`'s heartbeat (its record with TTL `expireAfter`, and its place in `P workers`) and renews
    /// the leases of its ``WorkerRecord/running`` tasks, in one script: a worker's beat is one round trip.
    ///
    /// - Parameter expireAfter: how long the record lives without another beat (a few beat intervals).
    /// - Throws: the ``RedisError`` of the call, or ``TaskStoreError/unexpectedReply(script:reply:)``.
    public func heartbeat(
        _ worker: WorkerRecord, lease: Duration, expireAfter: Duration, now: Int64? = nil
    ) async throws -> LeaseRenewal {
        var queues = JSONWriter(style: .python)
        queues.value(.array(worker.queues.map(JSONValue.string)))
        var arguments: [any RedisArgument] = [
            keys.prefix, worker.id, now ?? 0, lease.wholeMilliseconds, resultTTLSeconds,
            expireAfter.wholeMilliseconds, worker.host, worker.pid, queues.bytes, worker.slots, worker.startedMs,
        ]
        arguments.reserveCapacity(arguments.count + worker.running.count)
        for id in worker.running { arguments.append(id) }
        let reply = try await run(
            TaskScripts.heartbeat, keys: [keys.worker(worker.id), keys.workers], arguments: arguments)
        return try Self.leaseRenewal(reply, script: "heartbeat")
    }

    /// The workers that beat within their record's TTL, most recent beat first.
    ///
    /// - Throws: the ``RedisError`` of the calls.
    public func workers() async throws -> [WorkerRecord] {
        let ids = try await redis.send(RedisCommand("ZREVRANGE", keys.workers, 0, -1), timeout: nil)
        guard case .array(let idValues) = ids else { return [] }
        let names = idValues.compactMap(\.string)
        guard !names.isEmpty else { return [] }
        let replies = try await redis.send(
            batch: names.map { RedisCommand("HGETALL", keys.worker($0)) }, timeout: nil)
        var records: [WorkerRecord] = []
        for (id, result) in zip(names, replies) {
            guard case .success(.array(let fields)) = result, !fields.isEmpty else { continue }
            records.append(Self.workerRecord(id: id, fields: fields))
        }
        return records
    }

    /// Removes `id`'s record (a worker shutting down cleanly).
    ///
    /// - Throws: the ``RedisError`` of the call.
    public func removeWorker(_ id: String) async throws {
        _ = try await redis.send(
            batch: [RedisCommand("DEL", keys.worker(id)), RedisCommand("ZREM", keys.workers, id)], timeout: nil)
    }

    static func workerRecord(id: String, fields: [RESPValue]) -> WorkerRecord {
        var record = WorkerRecord(id: id, host: "", pid: 0, queues: [], slots: 0, startedMs: 0)
        var index = 0
        while index + 1 < fields.count {
            defer { index += 2 }
            guard let field = fields[index].string else { continue }
            let value = fields[index + 1]
            switch field {
            case "host": record.host = value.string ?? ""
            case "pid": record.pid = value.int ?? 0
            case "queues": record.queues = stringArray(value)
            case "slots": record.slots = value.int ?? 0
            case "running": record.running = stringArray(value)
            case "started_ms": record.startedMs = Int64(value.int ?? 0)
            case "last_beat_ms": record.lastBeatMs = value.int.map(Int64.init)
            default: break
            }
        }
        return record
    }

    private static func stringArray(_ value: RESPValue) -> [String] {
        guard let bytes = value.bytes, case .array(let items)? = try? JSONValue(json: bytes) else { return [] }
        return items.compactMap(\.stringValue)
    }

    static func leaseRenewal(_ reply: RESPValue, script: String) throws(TaskStoreError) -> LeaseRenewal {
        guard case .array(let parts) = reply, parts.count == 3 else {
            throw .unexpectedReply(script: script, reply: reply.description)
        }
        func ids(_ value: RESPValue) -> [String] { value.array?.compactMap(\.string) ?? [] }
        return LeaseRenewal(renewed: ids(parts[0]), lost: ids(parts[1]), revoked: ids(parts[2]))
    }
}
