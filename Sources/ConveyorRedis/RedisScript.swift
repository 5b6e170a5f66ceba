import ConveyorIO

/// A Lua script, loaded into Redis once and then called by its SHA1 with `EVALSHA`.
///
/// Create each script once (e.g. as a `static let`) and share it: the SHA learned from `SCRIPT LOAD` is cached
/// on the instance, thread-safely, and reused by every connection.
public final class RedisScript: Sendable {
    public let source: String
    private let cachedSHA = LockedValue<String?>(nil)

    public init(_ source: String) {
        self.source = source
    }

    /// The SHA1 Redis gave the script, once it was loaded.
    public var sha: String? { cachedSHA.current }

    func remember(_ sha: String) { cachedSHA.withLock { $0 = sha } }
}

extension RedisCommandSender {
    /// Runs `script` with `EVALSHA`, loading it first (`SCRIPT LOAD`) when this process has not yet.
    ///
    /// When Redis no longer has the script (`NOSCRIPT`: after a restart or `SCRIPT FLUSH`) it is loaded again and
    /// called once more, in one round trip.
    ///
    /// - Throws: ``RedisError/server(_:)`` for an error the script raised (or a Lua syntax error at load), and
    ///   the other ``RedisError``s of ``send(_:timeout:)``.
    public func evalScript(
        _ script: RedisScript, keys: [any RedisArgument] = [], arguments: [any RedisArgument] = [],
        timeout: Duration? = nil
    ) async throws -> RESPValue {
        if let sha = script.sha {
            do {
                return try await send(Self.evalsha(sha, keys: keys, arguments: arguments), timeout: timeout)
            } catch RedisError.noScript {
                // Fall through: load and call again, pipelined.
            }
            let results = try await send(
                batch: [
                    RedisCommand("SCRIPT", "LOAD", script.source),
                    Self.evalsha(sha, keys: keys, arguments: arguments),
                ], timeout: timeout)
            let loaded = try results[0].get()
            if let newSHA = loaded.string, newSHA != sha {
                // The server hashed a different source than we cached: trust the server and call that.
                script.remember(newSHA)
                return try await send(Self.evalsha(newSHA, keys: keys, arguments: arguments), timeout: timeout)
            }
            return try results[1].get()
        }
        let loaded = try await send(RedisCommand("SCRIPT", "LOAD", script.source), timeout: timeout)
        let sha = try expect(loaded.string, from: "SCRIPT LOAD", reply: loaded)
        script.remember(sha)
        return try await send(Self.evalsha(sha, keys: keys, arguments: arguments), timeout: timeout)
    }

    private static func evalsha(
        _ sha: String, keys: [any RedisArgument], arguments: [any RedisArgument]
    )
        -> RedisCommand
    {
        var command = RedisCommand("EVALSHA", sha, keys.count)
        command.append(contentsOf: keys)
        command.append(contentsOf: arguments)
        return command
    }
}
