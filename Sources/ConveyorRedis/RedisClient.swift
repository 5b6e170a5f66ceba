import ConveyorIO
import Logging

/// Everything a Conveyor process needs from one Redis: a shared pipelined connection for ordinary commands, a
/// small pool of dedicated connections for blocking ones, and a pub/sub subscriber made on first use.
///
/// ``RedisClient`` is a ``RedisCommandSender``: `get`, `set`, `evalScript`, `xadd`... go over the shared
/// connection.
public final class RedisClient: RedisCommandSender, Sendable {
    public let configuration: RedisConfiguration
    /// The shared, pipelined connection every non-blocking command uses.
    public let connection: RedisConnection
    private let pool: DedicatedConnectionPool
    private let subscriberTask = LockedValue<SubscriberState>(.none)

    private enum SubscriberState {
        case none
        case started(Task<RedisSubscriber, any Error>)
        case closed
    }

    private init(configuration: RedisConfiguration, connection: RedisConnection, maxDedicatedConnections: Int) {
        self.configuration = configuration
        self.connection = connection
        pool = DedicatedConnectionPool(configuration: configuration, maximum: maxDedicatedConnections)
    }

    /// Opens the shared connection. Dedicated connections and the subscriber are opened when first needed.
    ///
    /// - Parameter maxDedicatedConnections: how many blocking commands may run at once; more wait for a free one.
    /// - Throws: as ``RedisConnection/connect(_:)``.
    public static func connect(
        _ configuration: RedisConfiguration, maxDedicatedConnections: Int = 8
    ) async throws
        -> RedisClient
    {
        let connection = try await RedisConnection.connect(configuration)
        return RedisClient(
            configuration: configuration, connection: connection, maxDedicatedConnections: maxDedicatedConnections)
    }

    /// Sends `command` on the shared connection. See ``RedisConnection/send(_:timeout:)``.
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await connection.send(command, timeout: timeout)
    }

    /// Sends a pipeline on the shared connection. See ``RedisConnection/send(batch:timeout:)``.
    public func send(
        batch commands: [RedisCommand], timeout: Duration? = nil
    ) async throws -> [Result<
        RESPValue, RedisError
    >] {
        try await connection.send(batch: commands, timeout: timeout)
    }

    /// Runs `body` with a connection nobody else uses meanwhile, for blocking commands (`XREAD BLOCK`, `BLPOP`,
    /// `BRPOPLPUSH`, `WAIT`) or a `WATCH`/`MULTI` transaction.
    ///
    /// The connection goes back to the pool afterwards, unless a command on it is still owed a reply (its
    /// client-side deadline passed first): then it is closed before this returns, so no later user gets that reply
    /// and a blocked `BLPOP` cannot go on to take an element.
    ///
    /// - Important: do not keep the connection beyond `body`.
    /// - Throws: what `body` throws; ``RedisError/timeout(operation:after:)`` when no connection frees up within
    ///   the policy's `operationTimeout`; a connect error when a new connection cannot be opened.
    public func withDedicatedConnection<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let connection = try await pool.lease(timeout: configuration.policy.operationTimeout)
        do {
            let result = try await body(connection)
            await pool.release(connection)
            return result
        } catch {
            await pool.release(connection)
            throw error
        }
    }

    /// Sends one blocking command on a dedicated connection.
    ///
    /// - Parameter timeout: the client's deadline; make it longer than the command's own block time.
    /// - Throws: as ``RedisConnection/send(_:timeout:)``.
    @discardableResult
    public func blocking(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        let connection = try await pool.lease(timeout: timeout ?? configuration.policy.operationTimeout)
        do {
            let reply = try await connection.send(command, timeout: timeout)
            await pool.release(connection)
            return reply
        } catch {
            await pool.release(connection)
            throw error
        }
    }

    /// The client's pub/sub connection, opened on first use and shared afterwards.
    ///
    /// - Throws: the connect error of the first use (a later use tries again), or ``RedisError/closed``.
    public var subscriber: RedisSubscriber {
        get async throws {
            let task: Task<RedisSubscriber, any Error> = try subscriberTask.withLock { state in
                switch state {
                case .closed: throw RedisError.closed
                case .started(let task): return task
                case .none:
                    let configuration = self.configuration
                    let task = Task { try await RedisSubscriber.connect(configuration) }
                    state = .started(task)
                    return task
                }
            }
            do {
                return try await task.value
            } catch {
                subscriberTask.withLock { state in
                    if case .started(let current) = state, current == task { state = .none }
                }
                throw error
            }
        }
    }

    /// Closes the shared connection, the dedicated ones and the subscriber; outstanding commands fail with
    /// ``RedisError/closed``.
    public func close() async {
        let state = subscriberTask.withLock { state in
            let previous = state
            state = .closed
            return previous
        }
        await connection.close()
        await pool.close()
        if case .started(let task) = state, let subscriber = try? await task.value {
            await subscriber.close()
        }
    }
}
