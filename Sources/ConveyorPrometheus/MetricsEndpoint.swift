import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// Serves a process's swift-metrics in Prometheus's text format at `GET /metrics`, for Prometheus to scrape.
///
/// A worker (``ConveyorWorker``) reports what it does through swift-metrics; which backend receives it is the
/// process's choice, made once. This type is that choice for Prometheus: ``bootstrap()`` points swift-metrics at a
/// Prometheus registry, and an endpoint, run beside the worker in the same `ServiceGroup`, serves the registry.
/// It stops with the group (graceful shutdown closes the listener).
///
/// ```swift
/// let registry = MetricsEndpoint.bootstrap()
/// let endpoint = MetricsEndpoint(registry: registry, port: 9464, logger: logger)
/// let group = ServiceGroup(services: [worker, endpoint], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public struct MetricsEndpoint: Service {
    /// The registry served: the one ``bootstrap()`` made, or one of the caller's.
    public let registry: PrometheusCollectorRegistry
    /// The address to listen on: `127.0.0.1` (this machine only) unless told otherwise; `0.0.0.0` in a container
    /// that Prometheus scrapes from outside.
    public let host: String
    /// The TCP port; `0` asks the system for a free one (``onListening`` hears which).
    public let port: Int
    private let logger: Logger
    private let onListening: @Sendable (Int) async -> Void

    /// - Parameters:
    ///   - registry: what to serve.
    ///   - host: the address to bind.
    ///   - port: the port to bind; `0` for any free one.
    ///   - logger: logs the address once listening, and the server's errors.
    ///   - onListening: called once the endpoint accepts connections, with the port it is bound to.
    public init(
        registry: PrometheusCollectorRegistry, host: String = "127.0.0.1", port: Int, logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.registry = registry
        self.host = host
        self.port = port
        self.logger = logger
        self.onListening = onListening
    }

    /// Makes swift-metrics report to a new Prometheus registry and returns it.
    ///
    /// - Important: swift-metrics takes one backend per process: call this once, before anything makes a metric
    ///   (a worker makes its instruments when it starts), and not in a process that bootstrapped another backend.
    public static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// The body of a scrape: every metric of ``registry`` in the text exposition format, version 0.0.4.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// Listens until the service group shuts down.
    ///
    /// - Throws: the server's error when it cannot bind (the port is taken, say) or fails while running.
    public func run() async throws {
        let router = Router()
        let registry = registry
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let logger = logger
        let onListening = onListening
        let host = host
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(
                address: .hostname(host, port: port), serverName: "conveyor-metrics"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                logger.notice(
                    "metrics endpoint listening", metadata: ["address": "http://\(host):\(bound)/metrics"])
                await onListening(bound)
            },
            logger: logger)
        try await application.run()
    }
}
