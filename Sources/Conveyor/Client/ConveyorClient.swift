import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging

/// The producer's handle on Conveyor: submits tasks to the broker and reads their states and results from Redis.
///
/// ```swift
/// let client = try await ConveyorClient.connect(.fromEnvironment())
/// let ref = try await client.submit(Resize.self, .init(url: u, width: 256), options: .init(queue: "images"))
/// let thumbnail = try await ref.get(timeout: .seconds(30))
/// await client.close()
/// ```
///
/// Messages are Celery protocol v2 (DESIGN §3), so Celery workers can run them and Celery clients read the results.
/// Each message's `reply_to` is this client's id; workers publish the id of every finished task on
/// `P notify:<client id>`, which this client follows with one subscription however many refs it waits for.
///
/// - Important: share one client per process; every method may be called from any task. Call ``close()`` when
///   done: the notification loop (once started) keeps the client alive until then.
public final class ConveyorClient: Sendable {
    public let configuration: ConveyorConfiguration
    /// This client's id: the messages' `reply_to` and the name of its notification channel.
    public let clientID: String
    /// The publisher connection (confirms on).
    public let broker: AMQPConnection
    public let redis: RedisClient
    public let store: TaskStore
    /// `pid@host`, Celery's `origin` header.
    let origin: String
    let logger: Logger
    let waiters = ResultWaiters()
    /// Queues this client checked or declared; each is ensured once per client.
    let readyQueues = LockedValue<Set<String>>([])
    let notifications = LockedValue<NotificationState>(.idle)

    enum NotificationState {
        case idle
        /// Subscribing; every waiter awaits the same task.
        case starting(Task<Void, any Error>)
        /// Subscribed; the loop that reads notifications and reconnect events.
        case running(Task<Void, Never>)
        case closed
    }

    private init(
        configuration: ConveyorConfiguration, clientID: String, broker: AMQPConnection, redis: RedisClient
    ) {
        self.configuration = configuration
        self.clientID = clientID
        self.broker = broker
        self.redis = redis
        self.store = TaskStore(
            redis: redis,
            configuration: .init(
                keys: RedisKeys(prefix: configuration.keyPrefix, resultPrefix: configuration.resultKeyPrefix)))
        let info = ProcessInfo.processInfo
        self.origin = "\(info.processIdentifier)@\(info.hostName)"
        var logger = configuration.logger
        logger[metadataKey: "conveyor.client"] = .string(clientID)
        self.logger = logger
    }

    /// Connects to the broker and to Redis (the pub/sub connection opens on the first wait).
    ///
    /// - Throws: ``ConveyorError/invalidConfiguration(_:)`` for a URL that does not parse, or the first connect
    ///   error of either server (``AMQPError``, ``RedisError``).
    public static func connect(
        _ configuration: ConveyorConfiguration = .fromEnvironment()
    ) async throws
        -> ConveyorClient
    {
        let clientID = TaskID.make()
        let (broker, redis) = try await configuration.connectServers(connectionName: "conveyor-client \(clientID)")
        let client = ConveyorClient(configuration: configuration, clientID: clientID, broker: broker, redis: redis)
        client.logger.debug(
            "connected",
            metadata: [
                "broker": .array(configuration.brokerURLs.map { .string(ServerURL.redacted($0)) }),
                "redis": .string(ServerURL.redacted(configuration.redisURL)),
            ])
        return client
    }

    /// Stops the notification loop, fails every pending ``ObjectRef/get(timeout:)`` with
    /// ``ConveyorError/closed``, and closes both connections.
    public func close() async {
        let previous = notifications.withLock { state in
            defer { state = .closed }
            return state
        }
        switch previous {
        case .starting(let task): task.cancel()
        case .running(let task): task.cancel()
        case .idle, .closed: break
        }
        waiters.close()
        await broker.close()
        await redis.close()
    }

    /// A ref to a task this client may not have submitted (another process, a Python producer). Waiting on it
    /// follows the task's `celery-task-meta-<id>` channel through one pattern subscription shared by all such refs.
    public func ref<Output>(id: String, as output: Output.Type = JSONValue.self) -> ObjectRef<Output> {
        ObjectRef(id: id, client: self, submittedHere: false)
    }

    /// The task's state and details. A task Redis does not know (not yet claimed, or unknown) is PENDING.
    ///
    /// - Throws: ``RedisError``, ``TaskStoreError``.
    public func status(_ id: String) async throws -> TaskStatus {
        try await store.status(id)
    }

    /// The task's Celery result meta, or `nil` while there is none (pending, running, result ignored or expired).
    ///
    /// - Throws: ``RedisError``, ``TaskStoreError``.
    public func result(_ id: String) async throws -> CeleryResultMeta? {
        try await store.resultMeta(id)
    }
}

extension ConveyorClient {
    /// Cancels task `id` (Celery's `revoke`): a durable tombstone in Redis, which every worker checks before it
    /// runs a task and in every heartbeat while it runs one.
    ///
    /// - A task still queued or waiting in the delay set is REVOKED at once and never runs (its message is acked
    ///   and skipped when a worker gets it).
    /// - A running task's Swift task is cancelled by its worker as soon as the worker hears of it on its revoke
    ///   channel (at its next heartbeat at the latest), and the task ends REVOKED.
    /// - A task that already finished keeps its outcome: ``RevokeOutcome/alreadyFinished(_:)`` says which.
    ///
    /// Waiters on the task (``ObjectRef/get(timeout:)``) then fail with ``ConveyorError/revoked(id:reason:)``.
    ///
    /// - Parameter reason: recorded as the revocation's reason (Celery's `TaskRevokedError` message).
    /// - Throws: ``RedisError``, ``TaskStoreError``.
    @discardableResult
    public func cancel(_ id: String, reason: String = "cancelled") async throws -> RevokeOutcome {
        try await store.revoke(id, reason: reason, replyTo: clientID)
    }
}
