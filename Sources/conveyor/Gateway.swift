import ArgumentParser
import Conveyor
import ConveyorGateway
import ConveyorPrometheus
import Foundation
import Logging
import ServiceLifecycle

/// `conveyor gateway`: Conveyor's HTTP API (docs/HTTP.md) on this machine's servers.
struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the HTTP API: submit tasks, read their status and results, cancel them.",
        discussion: """
            POST /tasks, GET /tasks/ID, GET /tasks/ID/result?wait=SECONDS, DELETE /tasks/ID, GET /healthz \
            (docs/HTTP.md). Runs until SIGTERM or SIGINT. Logs go to standard error.
            """)

    @Option(help: "Address to bind: 127.0.0.1, or 0.0.0.0 in a container.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0: any free one; the log says which).")
    var port = 8080

    @Option(
        help: ArgumentHelp(
            "Comma-separated queues submits may name (default: any). List them when callers outside the team can reach the gateway.",
            valueName: "queues"))
    var queues: String?

    @Option(
        name: .long,
        help: "Also serve the gateway's own request metrics for Prometheus at http://HOST:PORT/metrics (0: any port).")
    var metricsPort: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    @OptionGroup var servers: ServerOptions

    func validate() throws {
        if !(0...65_535).contains(port) { throw ValidationError("--port must be a TCP port (0-65535)") }
        if let metricsPort, !(0...65_535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be a TCP port (0-65535)")
        }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        if host.isEmpty { throw ValidationError("--host names no address") }
        if let queues, allowedQueues(queues).isEmpty { throw ValidationError("--queues names no queue") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "conveyor.gateway")
        let metrics = metricsPort.map { port in
            MetricsEndpoint(registry: MetricsEndpoint.bootstrap(), host: host, port: port, logger: logger)
        }
        try await CLI.withClient(servers) { client in
            let gateway = ConveyorGateway(
                client: client,
                configuration: .init(host: host, port: port, allowedQueues: queues.map(allowedQueues)),
                logger: logger)
            var services: [any Service] = [gateway]
            if let metrics { services.append(metrics) }
            let group = ServiceGroup(
                configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        }
    }

    private func allowedQueues(_ text: String) -> Set<String> {
        Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }
}
