import CHiredis
import ConveyorIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One hiredis connection: connected and logged in blocking, then served non-blocking by its owner thread.
///
/// - Important: not thread-safe. Only the connection's owner thread touches it, from ``connect(url:timeout:keepalive:)``
///   until it is released (which frees the C context).
final class RedisContext {
    private let context: UnsafeMutablePointer<redisContext>
    private var header: [UInt8] = []

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
        header.reserveCapacity(24)
    }

    deinit { redisFree(context) }

    var fd: Int32 { context.pointee.fd }

    /// Bytes appended but not yet written to the socket.
    var pendingOutput: Int { conveyor_redis_pending_output(context) }

    /// Connects with a timeout, logs in, selects the database, and switches the socket to non-blocking.
    ///
    /// - Throws: ``RedisError/connectionRefused(host:port:)``, ``RedisError/timeout(operation:after:)``,
    ///   ``RedisError/authenticationFailed(_:)``, or ``RedisError/unavailable(lastError:)`` for anything else.
    static func connect(url: RedisURL, timeout: Duration, keepalive: Duration) throws(RedisError) -> RedisContext {
        let whole = Int(timeout.seconds)
        let tv = timeval(tv_sec: whole, tv_usec: Int(((timeout.seconds - Double(whole)) * 1e6).rounded()))
        guard let raw = redisConnectWithTimeout(url.host, Int32(url.port), tv) else {
            throw .unavailable(lastError: "cannot allocate a Redis context")
        }
        // From here on `context` owns `raw`: its deinit frees it on every error path.
        let context = RedisContext(context: raw)
        if raw.pointee.err != 0 {
            let message = context.errorText
            if raw.pointee.err == REDIS_ERR_IO, message.localizedCaseInsensitiveContains("refused") {
                throw .connectionRefused(host: url.host, port: url.port)
            }
            if message.localizedCaseInsensitiveContains("timed out") {
                throw .timeout(operation: "connect to \(url.host):\(url.port)", after: timeout)
            }
            throw .unavailable(lastError: "cannot connect to \(url.host):\(url.port): \(message)")
        }
        // Bounds the blocking handshake below; the socket is non-blocking afterwards, where this no longer applies.
        _ = redisSetTimeout(raw, tv)
        SocketOptions.enableKeepalive(fd: raw.pointee.fd, idle: keepalive)
        SocketOptions.disableNagle(fd: raw.pointee.fd)
        try context.handshake(url: url, timeout: timeout)
        guard conveyor_redis_set_nonblocking(raw) == 0 else {
            throw .unavailable(lastError: "cannot make the Redis socket non-blocking (errno \(errno))")
        }
        return context
    }

    /// AUTH and SELECT as the URL asks, or a PING, so a server that wants a password (NOAUTH) or is still
    /// loading its data fails the connect clearly instead of failing every later command.
    private func handshake(url: RedisURL, timeout: Duration) throws(RedisError) {
        var probed = false
        if let password = url.password {
            var auth = RedisCommand("AUTH")
            if let username = url.username { auth.append(username) }
            auth.append(password)
            if case .error(let message) = try blockingCommand(auth, timeout: timeout) {
                throw .authenticationFailed(message)
            }
            probed = true
        }
        if url.database != 0 {
            if case .error(let message) = try blockingCommand(RedisCommand("SELECT", url.database), timeout: timeout) {
                throw Self.handshakeError(message, what: "SELECT \(url.database)")
            }
            probed = true
        }
        if !probed, case .error(let message) = try blockingCommand(RedisCommand("PING"), timeout: timeout) {
            throw Self.handshakeError(message, what: "PING")
        }
    }

    private static func handshakeError(_ message: String, what: String) -> RedisError {
        if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") { return .authenticationFailed(message) }
        if message.hasPrefix("LOADING") || message.hasPrefix("MASTERDOWN") || message.hasPrefix("BUSY") {
            return .unavailable(lastError: message)
        }
        return .server("\(what) failed: \(message)")
    }

    /// One command on the still-blocking socket, during the handshake only.
    private func blockingCommand(_ command: RedisCommand, timeout: Duration) throws(RedisError) -> RESPValue {
        try append(command)
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
            let message = errorText
            if message.localizedCaseInsensitiveContains("temporarily unavailable") {
                throw .timeout(operation: command.name, after: timeout)
            }
            throw .unavailable(lastError: "\(command.name) during connect failed: \(message)")
        }
        defer { freeReplyObject(reply) }
        return RESPValue(reply: reply.assumingMemoryBound(to: redisReply.self))
    }

    /// Appends a command to the output buffer (written by ``flush()``).
    func append(_ command: RedisCommand) throws(RedisError) {
        header.removeAll(keepingCapacity: true)
        header.append(UInt8(ascii: "*"))
        header.appendDecimal(command.wordCount)
        header.append(UInt8(ascii: "\r"))
        header.append(UInt8(ascii: "\n"))
        try appendRaw(header)
        try appendRaw(command.body)
    }

    private func appendRaw(_ bytes: [UInt8]) throws(RedisError) {
        let rc = bytes.withUnsafeBufferPointer { buffer -> Int32 in
            guard let base = buffer.baseAddress else { return REDIS_OK }
            return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                redisAppendFormattedCommand(context, $0, buffer.count)
            }
        }
        if rc != REDIS_OK { throw ioError() }
    }

    /// Writes as much pending output as the socket takes now.
    func flush() throws(RedisError) {
        var done: Int32 = 0
        if redisBufferWrite(context, &done) != REDIS_OK { throw ioError() }
    }

    /// Reads what the socket has (up to 16 KiB) into the reply parser.
    func read() throws(RedisError) {
        if redisBufferRead(context) != REDIS_OK { throw ioError() }
    }

    /// The next complete reply already read, copied out and freed; `nil` when more bytes are needed.
    func nextReply() throws(RedisError) -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReplyFromReader(context, &reply) == REDIS_OK else {
            throw .protocolError(errorText)
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return RESPValue(reply: reply.assumingMemoryBound(to: redisReply.self))
    }

    private var errorText: String {
        guard let text = conveyor_redis_errstr(context) else { return "unknown error" }
        let message = String(cString: text)
        return message.isEmpty ? "unknown error (errno \(errno))" : message
    }

    private func ioError() -> RedisError {
        switch context.pointee.err {
        case REDIS_ERR_EOF: .connectionLost("the server closed the connection")
        case REDIS_ERR_PROTOCOL: .protocolError(errorText)
        default: .connectionLost(errorText)
        }
    }
}
