import ConveyorIO

/// Everything that can go wrong talking to Redis, each case distinct so callers (and logs) can tell them apart.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The URL could not be parsed; the reason names the part that is wrong.
    case invalidURL(String)
    /// Nothing listens on `host:port` (the TCP connection was refused).
    case connectionRefused(host: String, port: Int)
    /// `AUTH` (or the first command after connecting) was rejected; the server's own error text.
    case authenticationFailed(String)
    /// `operation` did not complete within `after`.
    case timeout(operation: String, after: Duration)
    /// The command waited for a reconnect until its deadline; `lastError` says why the server is unreachable.
    case unavailable(lastError: String)
    /// The connection died while the command was in flight: it may or may not have run, so it is not retried.
    case connectionLost(String)
    /// Redis answered with an error reply, e.g. `WRONGTYPE Operation against a key holding the wrong kind of value`.
    case server(String)
    /// `EVALSHA` named a script the server does not have (after a restart or `SCRIPT FLUSH`).
    case noScript
    /// The connection (or client, or subscriber) was closed by its owner.
    case closed
    /// The server sent something that is not RESP, or a reply of an unexpected shape.
    case protocolError(String)

    public var description: String {
        switch self {
        case .invalidURL(let reason): "invalid Redis URL: \(reason)"
        case .connectionRefused(let host, let port):
            "Redis at \(host):\(port) refused the connection (is redis-server running on that port?)"
        case .authenticationFailed(let message): "Redis authentication failed: \(message)"
        case .timeout(let operation, let after): "Redis \(operation) timed out after \(after.redisDescription)"
        case .unavailable(let lastError): "Redis is unavailable (still reconnecting): \(lastError)"
        case .connectionLost(let reason):
            "the Redis connection was lost (\(reason)); a command in flight may or may not have run"
        case .server(let message): "Redis error: \(message)"
        case .noScript: "Redis does not know the script (NOSCRIPT)"
        case .closed: "the Redis connection was closed"
        case .protocolError(let message): "Redis protocol error: \(message)"
        }
    }

    /// The error an error reply stands for: `NOSCRIPT` gets its own case so script callers can reload.
    init(serverMessage message: String) {
        self = message.hasPrefix("NOSCRIPT") ? .noScript : .server(message)
    }
}

extension Duration {
    /// "1.5s" / "250ms": short enough for an error message.
    var redisDescription: String {
        let seconds = self.seconds
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let tenths = (seconds * 10).rounded() / 10
        return tenths == tenths.rounded() ? "\(Int(tenths))s" : "\(tenths)s"
    }
}
