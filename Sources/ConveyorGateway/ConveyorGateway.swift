import Conveyor
import Hummingbird
import Logging
import ServiceLifecycle

/// Conveyor's HTTP API: submit tasks by name, read their status and results, cancel them, from any language
/// that speaks HTTP and JSON (docs/HTTP.md).
///
/// | route | what |
/// |---|---|
/// | `POST /tasks` | submit: `{"task": NAME, "args": [...], "kwargs": {...}, "queue": ..., ...}` → 202 with the id |
/// | `GET /tasks/{id}` | the task's status (``TaskStatus/jsonValue``) |
/// | `GET /tasks/{id}/result?wait=SECONDS` | its result: 200 once ready, 202 while not |
/// | `DELETE /tasks/{id}` | cancel (revoke) it |
/// | `GET /healthz` | 200 when Redis and the broker answer, 503 otherwise |
///
/// The gateway is a producer like any other: a submit returns once the broker confirmed the message, under the
/// same admission rules (idempotency keys, queue bounds, payload limit) as ``ConveyorClient``. It runs as a
/// `Service`, so it stops with its `ServiceGroup`'s graceful shutdown; the client it was given stays the caller's to
/// close.
public struct ConveyorGateway: Service {
    /// Where and how the gateway listens.
    public struct Configuration: Sendable {
        /// The address to bind: `127.0.0.1` (this machine only) unless told otherwise.
        public var host: String
        /// The TCP port; `0` asks the system for a free one.
        public var port: Int
        /// Request bodies over this many bytes are refused with 413 before they are read whole. The default
        /// leaves room for a task message of ``ConveyorConfiguration/maxPayloadBytes`` (16 MiB) and its wrapping.
        public var maxBodyBytes: Int
        /// The longest `?wait=` a result request may ask for; longer waits are cut to this (proxies and clients
        /// give up on idle connections long before an hour).
        public var maxWait: Duration
        /// The queues submits may name (the default queue included when a submit names none); `nil` (the
        /// default) allows any. Every new name makes the broker declare a durable queue and its dead-letter queue,
        /// so a gateway that callers outside the team can reach should list its queues.
        public var allowedQueues: Set<String>?

        public init(
            host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = (16 << 20) + (64 << 10),
            maxWait: Duration = .seconds(300), allowedQueues: Set<String>? = nil
        ) {
            self.host = host
            self.port = port
            self.maxBodyBytes = maxBodyBytes
            self.maxWait = maxWait
            self.allowedQueues = allowedQueues
        }
    }

    let client: ConveyorClient
    let configuration: Configuration
    let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - client: the connection to the broker and Redis that every request uses.
    ///   - configuration: the address, port and limits.
    ///   - logger: logs the address once listening, and every request that fails on the server's side.
    ///   - onListening: called once the gateway accepts connections, with the port it is bound to.
    public init(
        client: ConveyorClient, configuration: Configuration = Configuration(), logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.client = client
        self.configuration = configuration
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves requests until the service group shuts down.
    ///
    /// - Throws: the server's error when it cannot bind (the port is taken, say) or fails while running.
    public func run() async throws {
        let router = Router()
        // Request counts, durations and errors through swift-metrics: a no-op unless the process bootstrapped a
        // backend (`conveyor gateway --metrics-port`).
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        addRoutes(to: router)
        let logger = logger
        let onListening = onListening
        let host = configuration.host
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: configuration.port), serverName: "conveyor-gateway"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                logger.notice("gateway listening", metadata: ["address": "http://\(host):\(bound)"])
                await onListening(bound)
            },
            logger: logger)
        try await application.run()
    }
}
