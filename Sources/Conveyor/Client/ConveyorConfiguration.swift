import ConveyorAMQP
import ConveyorIO
import ConveyorRedis
import Foundation
import Logging

/// Where a ``ConveyorClient`` finds its broker and Redis, and how it names things there.
public struct ConveyorConfiguration: Sendable {
    /// Brokers to try in turn (a cluster's nodes), as `amqp://user:pass@host:port/vhost` URLs.
    public var brokerURLs: [String]
    /// The result backend, `redis://[:pass@]host:port/db`.
    public var redisURL: String
    /// Prefix of every Conveyor key in Redis (`conveyor:`); Celery's `celery-task-meta-<id>` keys are not prefixed.
    public var keyPrefix: String
    /// Prefix of Celery's result keys (Celery's `result_backend_transport_options={"global_keyprefix": …}`);
    /// empty, Celery's default.
    public var resultKeyPrefix: String = ""
    /// The queue used when ``TaskOptions/queue`` is empty.
    public var defaultQueue: String
    /// Also wait for this client's own tasks on Celery's `celery-task-meta-<id>` channels (one pattern subscription
    /// for all of them), not only on `P notify:<client id>`. Turn it on when Python Celery workers may run the
    /// tasks: Celery publishes a result on its key's channel but knows nothing of Conveyor's notify channel.
    ///
    /// - Important: with it on, the client receives every result published in its Redis database (the pattern
    ///   matches all of them), so leave it off when only Conveyor workers serve the queues. Off by default.
    public var followCeleryResultChannels: Bool = false
    /// How long an idempotency key names its task after the task was published (``TaskOptions/idempotencyKey``);
    /// 24 hours by default.
    public var idempotencyTTL: Duration = .seconds(86_400)
    /// How long a producer's reservation of an idempotency key stays pending before another producer takes it
    /// over (and publishes the task under the same id): the longest a producer that died between reserving and
    /// publishing holds the key up. Longer than a publish normally takes; 10 seconds by default.
    public var idempotencyPendingTTL: Duration = .seconds(10)
    /// The largest message body (the envelope's JSON: arguments included) a submit publishes, in bytes; a larger
    /// one is refused with ``ConveyorError/payloadTooLarge(size:limit:)`` before anything is published or reserved.
    /// 16 MiB by default, the size workers accept (`WorkerConfiguration.maxPayloadBytes`), so a task no worker
    /// would run is refused where its producer sees the error, not dead-lettered later.
    public var maxPayloadBytes: Int = 16 << 20
    /// How queues are declared when they do not exist yet.
    public var topology: TaskQueueTopology
    /// Connect timeout, heartbeat, backoff and operation deadline for both connections.
    public var policy: ReconnectPolicy
    public var logger: Logger
    /// Settings from the environment that do not parse; ``connectServers(connectionName:)`` refuses to connect
    /// with them, so a misspelt value stops the process at start instead of being replaced by a default.
    var environmentProblems: [String] = []

    public static let defaultBrokerURL = "amqp://guest:guest@127.0.0.1:5672/"
    public static let defaultRedisURL = "redis://127.0.0.1:6379/0"

    public init(
        brokerURLs: [String] = [ConveyorConfiguration.defaultBrokerURL],
        redisURL: String = ConveyorConfiguration.defaultRedisURL, keyPrefix: String = "conveyor:",
        defaultQueue: String = "celery", topology: TaskQueueTopology = TaskQueueTopology(),
        policy: ReconnectPolicy = .default, logger: Logger = Logger(label: "conveyor.client")
    ) {
        self.brokerURLs = brokerURLs
        self.redisURL = redisURL
        self.keyPrefix = keyPrefix
        self.defaultQueue = defaultQueue
        self.topology = topology
        self.policy = policy
        self.logger = logger
    }

    /// A configuration from `CONVEYOR_BROKER_URL` (several URLs separated by `,` or `;`), `CONVEYOR_REDIS_URL`,
    /// `CONVEYOR_PREFIX`, `CONVEYOR_RESULT_PREFIX` (Celery's `global_keyprefix` for result keys) and
    /// `CONVEYOR_PRIORITY_QUEUES` (``TaskQueueTopology/priorityQueues``: `urgent,images:5`) and
    /// `CONVEYOR_QUEUE_TYPE` (``TaskQueueTopology/queueType``: `quorum` or `classic`), with the local defaults for
    /// the ones not set. A queue type that is neither makes ``connectServers(connectionName:)`` throw.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> ConveyorConfiguration {
        var configuration = ConveyorConfiguration()
        if let brokers = environment["CONVEYOR_BROKER_URL"], !brokers.isEmpty {
            let urls = brokers.split(whereSeparator: { $0 == "," || $0 == ";" }).map {
                $0.trimmingCharacters(in: .whitespaces)
            }.filter { !$0.isEmpty }
            if !urls.isEmpty { configuration.brokerURLs = urls }
        }
        if let redis = environment["CONVEYOR_REDIS_URL"], !redis.isEmpty { configuration.redisURL = redis }
        if let prefix = environment["CONVEYOR_PREFIX"], !prefix.isEmpty { configuration.keyPrefix = prefix }
        if let prefix = environment["CONVEYOR_RESULT_PREFIX"] { configuration.resultKeyPrefix = prefix }
        if let queues = environment["CONVEYOR_PRIORITY_QUEUES"] {
            configuration.topology.priorityQueues = TaskQueueTopology.parsePriorityQueues(queues)
        }
        if let text = environment["CONVEYOR_QUEUE_TYPE"], !text.isEmpty {
            if let type = TaskQueueType(rawValue: text.lowercased()) {
                configuration.topology.queueType = type
            } else {
                configuration.environmentProblems.append("CONVEYOR_QUEUE_TYPE must be quorum or classic, not '\(text)'")
            }
        }
        return configuration
    }
}

extension ConveyorConfiguration {
    /// Connects to the broker and to Redis with this configuration's URLs, policy and logger: what a client and a
    /// worker both start with.
    ///
    /// - Parameter connectionName: the name the broker shows for the connection.
    /// - Throws: ``ConveyorError/invalidConfiguration(_:)`` for a URL that does not parse or a setting from the
    ///   environment that does not (`CONVEYOR_QUEUE_TYPE`), or the first connect
    ///   error of either server (``AMQPError``, ``RedisError``); nothing stays open after an error.
    public func connectServers(connectionName: String) async throws -> (broker: AMQPConnection, redis: RedisClient) {
        if let problem = environmentProblems.first { throw ConveyorError.invalidConfiguration(problem) }
        let amqp: AMQPConfiguration
        let redisConfiguration: RedisConfiguration
        do {
            amqp = AMQPConfiguration(
                urls: try brokerURLs.map { url throws(AMQPError) in try AMQPURL(string: url) }, policy: policy,
                connectionName: connectionName, logger: logger)
            redisConfiguration = try RedisConfiguration(url: redisURL, policy: policy, logger: logger)
        } catch {
            throw ConveyorError.invalidConfiguration(String(describing: error))
        }
        let broker = try await AMQPConnection.connect(amqp)
        do {
            return (broker, try await RedisClient.connect(redisConfiguration))
        } catch {
            await broker.close()
            throw error
        }
    }
}
