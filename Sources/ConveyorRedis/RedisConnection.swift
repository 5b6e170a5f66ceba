import ConveyorIO
import Logging

/// One pipelined connection to Redis, shared by any number of concurrent callers.
///
/// Each call's command is handed to the connection's own thread, which writes the commands of all callers
/// together and matches the replies in order, so 1,000 concurrent callers cost about as much as a few pipelined
/// batches. After a connection loss it reconnects by itself under the configuration's ``ReconnectPolicy``;
/// callers never recreate it.
///
/// - Important: do not send blocking commands (`BLPOP`, `XREAD BLOCK`, `WAIT`...) or `SUBSCRIBE` on a shared
///   connection: every other caller's reply would wait behind them. Use ``RedisClient/withDedicatedConnection(isolation:_:)``
///   or ``RedisClient/blocking(_:timeout:)`` and ``RedisSubscriber``.
public final class RedisConnection: RedisCommandSender, Sendable {
    public let configuration: RedisConfiguration
    private let runner: ConnectionRunner
    private let driver: RedisPipelineDriver
    private let counters: LockedValue<RedisConnectionCounters>

    private init(
        configuration: RedisConfiguration, runner: ConnectionRunner, driver: RedisPipelineDriver,
        counters: LockedValue<RedisConnectionCounters>
    ) {
        self.configuration = configuration
        self.runner = runner
        self.driver = driver
        self.counters = counters
    }

    deinit {
        // A connection dropped without `close()` must not leave its thread running forever.
        if !counters.withLock({ $0.closed }) {
            let runner = self.runner
            Task { await runner.stop() }
        }
    }

    /// Connects, logs in (AUTH, SELECT) and starts the connection's thread.
    ///
    /// - Throws: the first attempt's error: ``RedisError/connectionRefused(host:port:)``,
    ///   ``RedisError/authenticationFailed(_:)``, ``RedisError/timeout(operation:after:)`` or
    ///   ``RedisError/unavailable(lastError:)``. Later losses are not thrown here: the connection reconnects.
    public static func connect(_ configuration: RedisConfiguration) async throws -> RedisConnection {
        let counters = LockedValue(RedisConnectionCounters())
        let driver = RedisPipelineDriver(configuration: configuration, counters: counters)
        let runner = try await ConnectionRunner.start(
            name: "redis \(configuration.url.host):\(configuration.url.port)", driver: driver,
            policy: configuration.policy, logger: configuration.logger)
        return RedisConnection(configuration: configuration, runner: runner, driver: driver, counters: counters)
    }

    /// Sends one command and returns its reply.
    ///
    /// - Parameter timeout: the command's deadline, from now; `nil` uses the policy's `operationTimeout`. While
    ///   the connection is down the command waits for the reconnect until then.
    /// - Throws: ``RedisError/server(_:)`` for an error reply (``RedisError/noScript`` for `NOSCRIPT`),
    ///   ``RedisError/timeout(operation:after:)`` when the deadline passes with the command sent,
    ///   ``RedisError/unavailable(lastError:)`` when it passes while Redis is unreachable,
    ///   ``RedisError/connectionLost(_:)`` when the connection died with the command in flight (not retried: it
    ///   may have run), ``RedisError/closed`` after ``close()``.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let timeout = timeout ?? configuration.policy.operationTimeout
        let deadline = ContinuousClock.now + timeout
        let result = await withIOContinuation { (continuation: ReplyContinuation) in
            let request = RedisRequest(payload: .single(command, continuation), deadline: deadline, timeout: timeout)
            if !enqueue(request) { continuation.resume(returning: .failure(.closed)) }
        }
        return try result.get()
    }

    /// Sends `commands` as one pipeline, written together, and returns one result per command, in order.
    ///
    /// An error reply fails only its own command (``RedisError/server(_:)`` in its slot); the batch as a whole
    /// throws only when it cannot complete.
    ///
    /// - Throws: ``RedisError/timeout(operation:after:)``, ``RedisError/unavailable(lastError:)``,
    ///   ``RedisError/connectionLost(_:)`` or ``RedisError/closed``, as ``send(_:timeout:)``.
    public func send(
        batch commands: [RedisCommand], timeout: Duration? = nil
    ) async throws -> [Result<
        RESPValue, RedisError
    >] {
        let timeout = timeout ?? configuration.policy.operationTimeout
        let deadline = ContinuousClock.now + timeout
        let result = await withIOContinuation { (continuation: BatchContinuation) in
            let request = RedisRequest(payload: .batch(commands, continuation), deadline: deadline, timeout: timeout)
            if !enqueue(request) { continuation.resume(returning: .failure(.closed)) }
        }
        return try result.get()
    }

    /// Hands `request` to the thread unless the connection is closed. The check and the push share the lock that
    /// `close()` takes, so nothing can slip into the inbox after the thread's final drain.
    private func enqueue(_ request: RedisRequest) -> Bool {
        counters.withLock { counters in
            guard !counters.closed else { return false }
            counters.outstanding += request.commandCount
            driver.inbox.push(request)
            return true
        }
    }

    /// Closes the connection: commands still queued or in flight fail with ``RedisError/closed``. Returns once the
    /// connection's thread has finished.
    public func close() async {
        counters.withLock { $0.closed = true }
        await runner.stop()
    }

    /// Whether the connection is up right now (it may be reconnecting).
    public var isConnected: Bool { runner.connectionState == .connected }

    /// Commands sent whose reply has not arrived, including ones whose caller already timed out. A dedicated
    /// connection with any is not handed to the next user: its next reply would belong to someone else.
    var outstandingReplies: Int { counters.withLock { $0.outstanding } }

    var isClosed: Bool { counters.withLock { $0.closed } }
}
