import ArgumentParser
import Conveyor
import ConveyorExamples
import ConveyorWorker
import Foundation
import Logging

/// `conveyor-examples-worker`: a worker that runs the example tasks (examples.noop, add, sleep, fail, progress,
/// record). Servers come from `CONVEYOR_BROKER_URL` and `CONVEYOR_REDIS_URL`.
@main
struct ExamplesWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-examples-worker",
        abstract: "Run a Conveyor worker for the example tasks.",
        discussion:
            "Servers: CONVEYOR_BROKER_URL, CONVEYOR_REDIS_URL (local defaults). Stops gracefully on SIGTERM/SIGINT.")

    @Option(name: .long, help: "Comma-separated queues to consume.")
    var queues: String = "celery"

    @Option(name: .long, help: "Tasks run at once.")
    var concurrency: Int = 8

    @Option(name: .long, help: "Seconds a claim lasts without a heartbeat (a crashed worker's tasks rerun after it).")
    var lease: Double = 30

    @Option(name: .long, help: "Seconds running tasks get to finish on shutdown.")
    var grace: Double = 30

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "conveyor.worker")
        var conveyor = ConveyorConfiguration.fromEnvironment()
        conveyor.logger = logger
        let configuration = WorkerConfiguration(
            conveyor: conveyor,
            queues: queues.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) },
            concurrency: concurrency, lease: .milliseconds(Int64(lease * 1000)),
            gracePeriod: .milliseconds(Int64(grace * 1000)))
        try await Examples.runWorker(configuration, logger: logger)
    }
}
