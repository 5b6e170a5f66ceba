/// Something that sends commands to Redis: a ``RedisConnection`` or a ``RedisClient``.
///
/// The typed conveniences (`get`, `set`, `hset`, `zadd`, `xadd`, `evalScript`...) are written once against this
/// protocol and are thin wrappers over ``send(_:timeout:)``.
public protocol RedisCommandSender: Sendable {
    /// Sends one command and returns its reply; an error reply throws ``RedisError/server(_:)``.
    /// `timeout` `nil` means the policy's `operationTimeout`.
    func send(_ command: RedisCommand, timeout: Duration?) async throws -> RESPValue

    /// Sends commands as one pipeline and returns one result per command, in order.
    func send(batch commands: [RedisCommand], timeout: Duration?) async throws -> [Result<RESPValue, RedisError>]
}

/// Checks a reply's shape; the typed conveniences turn anything unexpected into a clear error.
///
/// A free function rather than a protocol-extension method, so it is specialised for `T` even where the calling
/// convenience is not specialised for its `Self`.
func expect<T>(_ value: T?, from command: String, reply: RESPValue) throws(RedisError) -> T {
    guard let value else {
        throw RedisError.protocolError("unexpected reply to \(command): \(reply)")
    }
    return value
}
