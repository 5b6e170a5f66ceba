/// How ``RedisCommandSender/set(_:to:expiration:condition:timeout:)`` may write.
public enum RedisSetCondition: Sendable, Hashable {
    case always
    /// `NX`: only when the key does not exist.
    case ifNotExists
    /// `XX`: only when the key exists.
    case ifExists
}

extension RedisCommandSender {
    /// `GET key`: the value's bytes, or `nil` when the key does not exist.
    /// - Throws: ``RedisError`` (e.g. ``RedisError/server(_:)`` with `WRONGTYPE` for a non-string key).
    public func get(_ key: String, timeout: Duration? = nil) async throws -> [UInt8]? {
        var command = RedisCommand("GET")
        command.append(key)
        let reply = try await send(command, timeout: timeout)
        return reply.isNull ? nil : try expect(reply.bytes, from: "GET", reply: reply)
    }

    /// `GET key` decoded as UTF-8, or `nil` when the key does not exist.
    /// - Throws: ``RedisError``.
    public func getString(_ key: String, timeout: Duration? = nil) async throws -> String? {
        try await get(key, timeout: timeout).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `SET key value [PX ms] [NX|XX]`.
    /// - Returns: whether the value was written (always `true` without a condition).
    /// - Throws: ``RedisError``.
    @discardableResult
    public func set(
        _ key: String, to value: some RedisArgument, expiration: Duration? = nil,
        condition: RedisSetCondition = .always,
        timeout: Duration? = nil
    ) async throws -> Bool {
        var command = RedisCommand("SET")
        command.append(key)
        command.append(value)
        if let expiration {
            command.append("PX")
            command.append(max(1, Int(expiration.seconds * 1000)))
        }
        switch condition {
        case .always: break
        case .ifNotExists: command.append("NX")
        case .ifExists: command.append("XX")
        }
        return try await send(command, timeout: timeout) != .null
    }

    /// `DEL keys...`: how many of them existed.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func del(_ keys: [String], timeout: Duration? = nil) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        let reply = try await send(RedisCommand("DEL", arguments: keys), timeout: timeout)
        return try expect(reply.int, from: "DEL", reply: reply)
    }

    /// `DEL key`: whether it existed.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func del(_ key: String, timeout: Duration? = nil) async throws -> Bool {
        try await del([key], timeout: timeout) == 1
    }

    /// `EXISTS key`.
    /// - Throws: ``RedisError``.
    public func exists(_ key: String, timeout: Duration? = nil) async throws -> Bool {
        let reply = try await send(RedisCommand("EXISTS", key), timeout: timeout)
        return try expect(reply.int, from: "EXISTS", reply: reply) == 1
    }

    /// `PEXPIRE key ms`: whether the key exists (and now expires).
    /// - Throws: ``RedisError``.
    @discardableResult
    public func expire(_ key: String, after: Duration, timeout: Duration? = nil) async throws -> Bool {
        let reply = try await send(
            RedisCommand("PEXPIRE", key, max(1, Int(after.seconds * 1000))), timeout: timeout)
        return try expect(reply.int, from: "PEXPIRE", reply: reply) == 1
    }

    /// `INCRBY key by`: the new value.
    /// - Throws: ``RedisError`` (`ERR value is not an integer...` for a non-numeric value).
    @discardableResult
    public func incr(_ key: String, by amount: Int = 1, timeout: Duration? = nil) async throws -> Int {
        let reply = try await send(RedisCommand("INCRBY", key, amount), timeout: timeout)
        return try expect(reply.int, from: "INCRBY", reply: reply)
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    /// - Throws: ``RedisError``.
    @discardableResult
    public func publish(
        _ message: some RedisArgument, to channel: String, timeout: Duration? = nil
    ) async throws
        -> Int
    {
        var command = RedisCommand("PUBLISH", channel)
        command.append(message)
        let reply = try await send(command, timeout: timeout)
        return try expect(reply.int, from: "PUBLISH", reply: reply)
    }
}
