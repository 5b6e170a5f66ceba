extension RedisCommandSender {
    /// `HSET key field value [field value ...]`: how many fields were new.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func hset(
        _ key: String, _ fields: [(String, any RedisArgument)], timeout: Duration? = nil
    ) async throws
        -> Int
    {
        var command = RedisCommand("HSET", key)
        for (field, value) in fields {
            command.append(field)
            command.append(value)
        }
        let reply = try await send(command, timeout: timeout)
        return try expect(reply.int, from: "HSET", reply: reply)
    }

    /// `HGET key field`.
    /// - Throws: ``RedisError``.
    public func hget(_ key: String, field: String, timeout: Duration? = nil) async throws -> [UInt8]? {
        let reply = try await send(RedisCommand("HGET", key, field), timeout: timeout)
        return reply.isNull ? nil : try expect(reply.bytes, from: "HGET", reply: reply)
    }

    /// `HGETALL key`: every field and its value (empty when the key does not exist).
    /// - Throws: ``RedisError``.
    public func hgetall(_ key: String, timeout: Duration? = nil) async throws -> [String: [UInt8]] {
        let reply = try await send(RedisCommand("HGETALL", key), timeout: timeout)
        let elements = try expect(reply.array, from: "HGETALL", reply: reply)
        var fields: [String: [UInt8]] = [:]
        fields.reserveCapacity(elements.count / 2)
        var index = 0
        while index + 1 < elements.count {
            if let field = elements[index].string, let value = elements[index + 1].bytes { fields[field] = value }
            index += 2
        }
        return fields
    }

    /// `ZADD key score member [score member ...]`: how many members were new.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func zadd(
        _ key: String, _ members: [(member: any RedisArgument, score: Double)], timeout: Duration? = nil
    )
        async throws -> Int
    {
        var command = RedisCommand("ZADD", key)
        for entry in members {
            command.append(entry.score)
            command.append(entry.member)
        }
        let reply = try await send(command, timeout: timeout)
        return try expect(reply.int, from: "ZADD", reply: reply)
    }

    /// `ZRANGEBYSCORE key min max [LIMIT 0 count]`: members in score order. Bounds are Redis syntax: a number,
    /// `"(1.5"` for exclusive, `"-inf"`, `"+inf"`.
    /// - Throws: ``RedisError``.
    public func zrangebyscore(
        _ key: String, min: some RedisArgument, max: some RedisArgument, limit: Int? = nil, timeout: Duration? = nil
    ) async throws -> [[UInt8]] {
        var command = RedisCommand("ZRANGEBYSCORE", key)
        command.append(min)
        command.append(max)
        if let limit {
            command.append("LIMIT")
            command.append(0)
            command.append(limit)
        }
        let reply = try await send(command, timeout: timeout)
        let elements = try expect(reply.array, from: "ZRANGEBYSCORE", reply: reply)
        return try elements.map { try expect($0.bytes, from: "ZRANGEBYSCORE", reply: reply) }
    }

    /// `ZREM key members...`: how many were removed.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func zrem(_ key: String, _ members: [any RedisArgument], timeout: Duration? = nil) async throws -> Int {
        var command = RedisCommand("ZREM", key)
        command.append(contentsOf: members)
        let reply = try await send(command, timeout: timeout)
        return try expect(reply.int, from: "ZREM", reply: reply)
    }
}
