import ConveyorIO
import Logging
import Synchronization

/// An AMQP 0-9-1 connection to RabbitMQ that reconnects by itself.
///
/// One `AMQPConnection` is one TCP connection served by one dedicated thread (rabbitmq-c is blocking and not
/// thread-safe). Any number of tasks may use it at once: their calls are queued to that thread, which batches
/// them, and each caller resumes when its own work is done.
///
/// After the link breaks, the thread reconnects under ``AMQPConfiguration/policy``, re-declares everything
/// declared through this connection, resubscribes its consumers and republishes messages that were not yet
/// confirmed. Callers do not retry: their calls wait for the reconnect until their deadline.
///
/// - Important: give publishers and consumers **separate connections**. When RabbitMQ runs short of memory or
///   disk it blocks connections that publish: it stops reading from them, which stalls everything else on them
///   too (acks, topology calls, and once the socket buffers fill, the connection's thread itself, until the alarm
///   clears). Opening several connections is cheap; each has its own thread.
public final class AMQPConnection: Sendable {
    let driver: AMQPDriver
    let runner: ConnectionRunner
    private let closing = Atomic<Bool>(false)
    public let configuration: AMQPConfiguration

    private init(driver: AMQPDriver, runner: ConnectionRunner, configuration: AMQPConfiguration) {
        self.driver = driver
        self.runner = runner
        self.configuration = configuration
    }

    deinit {
        // Nobody can use the connection any more; stop its thread (close() may not have been called).
        if !closing.load(ordering: .acquiring) {
            let runner = self.runner
            Task { await runner.stop() }
        }
    }

    /// Connects (trying each URL of the configuration once) and starts the connection's thread.
    ///
    /// - Throws: ``AMQPError/connectionRefused(host:port:)``, ``AMQPError/hostNotFound(_:)``,
    ///   ``AMQPError/timeout``, ``AMQPError/authenticationFailed(user:)``, ``AMQPError/accessRefused(_:)`` (virtual
    ///   host), or ``AMQPError/invalidURL(_:)`` when no URL is configured. Nothing is left running after a throw.
    public static func connect(_ configuration: AMQPConfiguration) async throws -> AMQPConnection {
        let driver = AMQPDriver(configuration: configuration)
        let runner = try await ConnectionRunner.start(
            name: "amqp \(configuration.connectionName)", driver: driver, policy: configuration.policy,
            logger: configuration.logger)
        return AMQPConnection(driver: driver, runner: runner, configuration: configuration)
    }

    /// Connects to one broker URL with the default policy.
    ///
    /// - Throws: ``AMQPError/invalidURL(_:)`` for a malformed URL, else what ``connect(_:)`` throws.
    public static func connect(url: String, connectionName: String = "conveyor") async throws -> AMQPConnection {
        try await connect(AMQPConfiguration(url: url, connectionName: connectionName))
    }

    /// Waits until no publish is waiting for a confirm (each ends by its deadline at the latest), then closes
    /// the connection. Consumers' sequences end; unacked deliveries go back to their queues. Idempotent.
    public func close() async {
        if closing.exchange(true, ordering: .acquiringAndReleasing) {
            await runner.stop()
            return
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if !driver.submit(.drain(continuation)) { continuation.resume() }
        }
        await runner.stop()
    }

    /// Where the connection stands now.
    public var state: AMQPConnectionState {
        if closing.load(ordering: .acquiring) && runner.connectionState == .stopped { return .closed }
        switch runner.connectionState {
        case .connecting: return .connecting
        case .connected:
            if let reason = driver.shared.current.blockedReason { return .blocked(reason: reason) }
            return .connected
        case .reconnecting(let attempt): return .reconnecting(attempt: attempt)
        case .stopped: return .closed
        }
    }

    /// True while the broker blocks this connection (a memory or disk alarm): publishes wait until unblocked.
    public var isBlocked: Bool { driver.shared.current.blockedReason != nil }

    /// The deadline for an operation given `timeout` (or the policy's operation timeout).
    func deadline(_ timeout: Duration?) -> ContinuousClock.Instant {
        .now + (timeout ?? configuration.policy.operationTimeout)
    }
}

/// The state of an ``AMQPConnection``.
public enum AMQPConnectionState: Sendable, Hashable {
    case connecting
    case connected
    /// Connected, but the broker blocks publishing (resource alarm); the reason is the broker's.
    case blocked(reason: String)
    /// The link broke; `attempt` reconnect attempts have failed so far.
    case reconnecting(attempt: Int)
    case closed
}
