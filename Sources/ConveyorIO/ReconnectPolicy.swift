/// The one connection policy every Conveyor connection follows, RabbitMQ and Redis alike.
///
/// Connect with a timeout, keep the link alive (AMQP heartbeats, TCP keepalive), and after a loss reconnect with
/// capped exponential backoff and jitter until the connection is back or closed. Callers never see a retry loop:
/// their work waits for the reconnect until its own deadline and then fails with a clear error.
public struct ReconnectPolicy: Sendable, Hashable {
    /// How long one connection attempt (TCP connect plus handshake) may take.
    public var connectTimeout: Duration
    /// The first backoff after a failed attempt.
    public var initialBackoff: Duration
    /// The longest backoff; keeps a client within a few seconds of a server that came back.
    public var maxBackoff: Duration
    /// Growth of the backoff per failed attempt.
    public var multiplier: Double
    /// Fraction of each backoff that is randomised (0...1), so a fleet does not reconnect in lockstep.
    public var jitter: Double
    /// AMQP heartbeat interval, and the TCP keepalive idle time of Redis connections.
    public var heartbeat: Duration
    /// Default deadline of one operation (a command, a publish confirm) when the caller gives none.
    public var operationTimeout: Duration

    public init(
        connectTimeout: Duration = .seconds(5),
        initialBackoff: Duration = .milliseconds(50),
        maxBackoff: Duration = .seconds(2),
        multiplier: Double = 2,
        jitter: Double = 0.25,
        heartbeat: Duration = .seconds(10),
        operationTimeout: Duration = .seconds(30)
    ) {
        self.connectTimeout = connectTimeout
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
        self.jitter = jitter
        self.heartbeat = heartbeat
        self.operationTimeout = operationTimeout
    }

    public static let `default` = ReconnectPolicy()

    /// The wait before reconnect attempt `attempt` (0 for the first retry).
    public func backoff(attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let base = initialBackoff.seconds * pow(multiplier, Double(min(attempt, 30)))
        let capped = min(base, maxBackoff.seconds)
        let spread = capped * jitter
        return .seconds(max(0, capped - spread + 2 * spread * random))
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// The duration in whole milliseconds, clamped to Int32 for poll(2).
    public var pollMilliseconds: Int32 {
        let ms = (seconds * 1000).rounded(.up)
        return Int32(max(0, min(ms, Double(Int32.max))))
    }
}

private func pow(_ x: Double, _ y: Double) -> Double {
    var result = 1.0
    for _ in 0..<Int(y) { result *= x }
    return result
}
