extension RedisCommandSender {
    /// `XADD key id field value ...`: appends an entry and returns its id.
    ///
    /// - Parameter id: `"*"` lets Redis choose; an explicit id (`"5-1"`) must be greater than the stream's last one,
    ///   which is how a replayed producer avoids adding an item twice.
    /// - Throws: ``RedisError/server(_:)`` (`ERR The ID specified in XADD is equal or smaller than the target stream
    ///   top item`) for an id that is not greater than the last; other ``RedisError``s.
    @discardableResult
    public func xadd(
        _ key: String, id: String = "*", fields: [(String, any RedisArgument)], maxLength: Int? = nil,
        timeout: Duration? = nil
    ) async throws -> String {
        var command = RedisCommand("XADD", key)
        if let maxLength {
            command.append("MAXLEN")
            command.append("~")
            command.append(maxLength)
        }
        command.append(id)
        for (name, value) in fields {
            command.append(name)
            command.append(value)
        }
        let reply = try await send(command, timeout: timeout)
        return try expect(reply.string, from: "XADD", reply: reply)
    }

    /// `XRANGE key start end [COUNT count]`.
    /// - Throws: ``RedisError``.
    public func xrange(
        _ key: String, from start: String = "-", to end: String = "+", count: Int? = nil, timeout: Duration? = nil
    ) async throws -> [RedisStreamEntry] {
        var command = RedisCommand("XRANGE", key, start, end)
        if let count {
            command.append("COUNT")
            command.append(count)
        }
        let reply = try await send(command, timeout: timeout)
        let entries = try expect(reply.array, from: "XRANGE", reply: reply)
        return try entries.map { try expect(RedisStreamEntry($0), from: "XRANGE", reply: reply) }
    }

    /// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...`: entries after the given ids, per stream key.
    ///
    /// - Parameter block: how long the server may wait for an entry; `nil` does not block. A blocking read must
    ///   run on a dedicated connection (``RedisClient/withDedicatedConnection(isolation:_:)``), and `timeout` (the
    ///   client's deadline) must be longer than `block`.
    /// - Returns: the streams that had entries; empty when the block time passed with none.
    /// - Throws: ``RedisError``.
    public func xread(
        _ streams: [(key: String, after: String)], count: Int? = nil, block: Duration? = nil,
        timeout: Duration? = nil
    ) async throws -> [String: [RedisStreamEntry]] {
        var command = RedisCommand("XREAD")
        if let count {
            command.append("COUNT")
            command.append(count)
        }
        if let block {
            command.append("BLOCK")
            command.append(Int(block.seconds * 1000))
        }
        command.append("STREAMS")
        for stream in streams { command.append(stream.key) }
        for stream in streams { command.append(stream.after) }
        let reply = try await send(command, timeout: timeout)
        if reply.isNull { return [:] }
        var result: [String: [RedisStreamEntry]] = [:]
        for stream in try expect(reply.array, from: "XREAD", reply: reply) {
            guard let pair = stream.array, pair.count == 2, let key = pair[0].string, let entries = pair[1].array else {
                throw RedisError.protocolError("unexpected reply to XREAD: \(reply)")
            }
            result[key] = try entries.map { try expect(RedisStreamEntry($0), from: "XREAD", reply: reply) }
        }
        return result
    }
}
